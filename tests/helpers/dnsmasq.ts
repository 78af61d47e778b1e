/**
 * A real DNS server for tests of `dns:NAME` peers: `dnsmasq` (Debian's `dnsmasq-base`) on
 * 127.0.0.1 and a free port, answering only the TXT records a test gives it: no upstream
 * servers, no hosts file, no other configuration. The records go through a configuration
 * file of its own, since only there does dnsmasq read quoted strings that hold commas.
 * `stop()` ends it by its pid and removes the file; call it in `finally`.
 *
 * @module
 */

import { isTcpPortFree, isUdpPortFree } from "./ports.ts";

const HOST = "127.0.0.1";
const PORT_ATTEMPTS_MAX = 100;
/** dnsmasq answers within milliseconds; this is for a loaded CI machine. */
const READY_WAIT_MS = 15_000;
const STOP_WAIT_MS = 10_000;

/** One TXT record: the character-strings it holds (each at most 255 characters). */
export interface TxtRecord {
  name: string;
  strings: string[];
}

/**
 * Whether dnsmasq is installed (`.ci/run` installs `dnsmasq-base`); when it is not, the
 * tests that need it are skipped with a message, as the other tests of network tools are.
 */
export function hasDnsmasq(): boolean {
  const found = new Deno.Command("sh", {
    args: ["-c", "command -v dnsmasq"],
    stdout: "null",
    stderr: "null",
  }).outputSync().success;
  if (!found) console.warn("dnsmasq is not installed (apt-get install dnsmasq-base): skipped");
  return found;
}

/** A running dnsmasq. */
export class Dnsmasq {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #directory: string;
  readonly #output: Promise<Deno.CommandOutput>;

  private constructor(port: number, child: Deno.ChildProcess, directory: string) {
    this.port = port;
    this.#child = child;
    this.#directory = directory;
    this.#output = child.output();
  }

  /** `--dns-server` for this server. */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** Starts dnsmasq serving `records`, and waits until it answers the first of them. */
  static async start(records: TxtRecord[]): Promise<Dnsmasq> {
    const directory = Deno.makeTempDirSync({ prefix: `blixard-dnsmasq-${Deno.pid}-` });
    const config = `${directory}/dnsmasq.conf`;
    Deno.writeTextFileSync(config, records.map(configLine).join(""));
    const port = await freeDnsPort();
    const child = spawnDnsmasq({
      args: [
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        `--conf-file=${config}`,
        "--pid-file",
        `--port=${port}`,
        `--listen-address=${HOST}`,
        "--bind-interfaces",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }, directory);
    const server = new Dnsmasq(port, child, directory);
    try {
      await server.#waitUntilAnswering(records[0]!.name);
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  /** Ends dnsmasq (its own pid) and removes its configuration. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }, STOP_WAIT_MS);
    try {
      await this.#output;
    } finally {
      clearTimeout(timer);
      Deno.removeSync(this.#directory, { recursive: true });
    }
  }

  async #waitUntilAnswering(name: string): Promise<void> {
    const deadline = performance.now() + READY_WAIT_MS;
    let lastError: unknown = null;
    while (performance.now() < deadline) {
      try {
        await Deno.resolveDns(name, "TXT", { nameServer: { ipAddr: HOST, port: this.port } });
        return;
      } catch (error) {
        lastError = error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const output = await Promise.race([this.#output, Promise.resolve(null)]);
    throw new Error(
      `dnsmasq on ${this.address} did not answer within ${READY_WAIT_MS} ms: ${lastError}` +
        (output === null ? "" : ` (exited: ${new TextDecoder().decode(output.stderr)})`),
    );
  }
}

function spawnDnsmasq(options: Deno.CommandOptions, directory: string): Deno.ChildProcess {
  try {
    return new Deno.Command("dnsmasq", options).spawn();
  } catch (error) {
    Deno.removeSync(directory, { recursive: true });
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(
      "dnsmasq is not installed: apt-get install -y --no-install-recommends dnsmasq-base " +
        "(.ci/run does this)",
    );
  }
}

/** The TXT records of zone-file lines as `blixard cluster dns-records` prints them. */
export function recordsOfZoneLines(text: string): TxtRecord[] {
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => {
    const match = /^(\S+) [0-9]+ IN TXT ((?:"[^"]*" ?)+)$/.exec(line);
    if (match === null) throw new Error(`not a TXT line of a zone file: ${line}`);
    const strings = [...match[2]!.matchAll(/"([^"]*)"/g)].map((string) => string[1]!);
    return { name: match[1]!.replace(/\.$/, ""), strings };
  });
}

function configLine(record: TxtRecord): string {
  for (const string of record.strings) {
    if (string.includes('"') || string.includes("\n")) throw new Error(`cannot quote ${string}`);
  }
  return `txt-record=${record.name},${record.strings.map((string) => `"${string}"`).join(",")}\n`;
}

/**
 * A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both), below the
 * nodes' ports of `ports.ts` and the kernel's ephemeral range.
 */
async function freeDnsPort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const port = 12_000 + Math.floor(Math.random() * 7_000);
    if (isTcpPortFree(port) && await isUdpPortFree(port)) return port;
  }
  throw new Error(`no free port for dnsmasq after ${PORT_ATTEMPTS_MAX} tries`);
}
