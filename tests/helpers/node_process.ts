/**
 * Real Blixard nodes as child processes, for end-to-end tests and benchmarks.
 *
 * Every child runs `main.ts` with the Deno that runs the test, on 127.0.0.1, with ports
 * chosen by the OS and a temporary data dir. Its stderr (the log) and stdout are read to
 * the end in the background so that pipes never fill up; `stop()` and `kill()` always await
 * the exit and the readers, which keeps Deno's resource sanitizer satisfied even when a
 * test fails. Use `NodeGroup` so one `finally` cleans up every child of a test.
 *
 * @module
 */

import { freeBindPort } from "./ports.ts";
import { childEnv } from "./child_env.ts";
import { WAIT_MS } from "./wait_budget.ts";

const MAIN_PATH = new URL("../../main.ts", import.meta.url).pathname;
const HTTP_PORT_OFFSET = 1000;
const STOP_GRACE_MS = 10_000;
const POLL_INTERVAL_MS = 20;
/** Default deadline of the waits: generous, since CI machines are shared and slow. */
const WAIT_MS_DEFAULT = WAIT_MS;
/** Polls of a node in a namespace each start a `curl`: fewer of them. */
const NETNS_POLL_INTERVAL_MS = 200;

/** How to start one node. */
export interface NodeProcessOptions {
  id: number;
  /** Defaults to a free port from the OS. */
  bindPort?: number;
  /** `NodeGroup` supplies one it removes at cleanup. */
  dataDir: string;
  peers?: string[];
  /** Extra environment; the child also inherits PATH and HOME only. */
  env?: Record<string, string>;
  /** Extra arguments after the standard ones. */
  args?: string[];
  /** `json` (default, easy to search) or `text`. */
  logFormat?: "json" | "text";
  /** Flags for Deno itself, before the script (benchmarks: `--cpu-prof`, `--v8-flags=…`). */
  denoFlags?: string[];
  /** The script the child runs; default this tree's `main.ts` (benchmarks compare builds). */
  mainPath?: string;
  /** The command, `node` by default; tests of bad input pass their own full argument list. */
  rawArgs?: string[];
  /** Host of `--bind`; default `127.0.0.1`. */
  bindHost?: string;
  /**
   * Runs the child in this network namespace (`ip netns exec`, root only); the helper's
   * own HTTP requests then go through `curl` in the namespace too.
   */
  netns?: string;
  /** The HTTP `host:port` the helper asks; default the bind host at bind port + 1000. */
  httpAddress?: string;
}

/** A running (or exited) child node. */
export class NodeProcess {
  readonly id: number;
  readonly bindPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
  readonly pid: number;
  /** Resolves when the child has exited and both output streams are read to the end. */
  readonly exited: Promise<Deno.CommandStatus>;
  readonly startedAtMs: number;
  /** `host:port` of `--bind`. */
  readonly address: string;
  /** `host:port` of the HTTP server, as the helper reaches it. */
  readonly httpAddress: string;
  /** The network namespace the child runs in, or `null` for the test's own. */
  readonly netns: string | null;
  #child: Deno.ChildProcess;
  #stderrText = "";
  #stdoutText = "";
  #exitStatus: Deno.CommandStatus | null = null;
  #paused = false;

  private constructor(
    options: {
      id: number;
      bindPort: number;
      dataDir: string;
      args: string[];
      env: Record<string, string>;
      bindHost: string;
      netns: string | null;
      httpAddress: string | null;
      denoFlags: string[];
      mainPath: string;
    },
  ) {
    this.id = options.id;
    this.bindPort = options.bindPort;
    this.httpPort = options.bindPort + HTTP_PORT_OFFSET;
    this.dataDir = options.dataDir;
    this.startedAtMs = performance.now();
    this.address = joinHostPort(options.bindHost, options.bindPort);
    this.httpAddress = options.httpAddress ?? joinHostPort(options.bindHost, this.httpPort);
    this.netns = options.netns;
    const command = [
      Deno.execPath(),
      "run",
      "-A",
      ...options.denoFlags,
      options.mainPath,
      ...options.args,
    ];
    // `ip netns exec` execs the command in place, so the pid is the node's own.
    if (this.netns !== null) command.unshift("ip", "netns", "exec", this.netns);
    this.#child = new Deno.Command(command[0]!, {
      args: command.slice(1),
      env: options.env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    const stdoutDone = readAll(this.#child.stdout, (text) => this.#stdoutText += text);
    const stderrDone = readAll(this.#child.stderr, (text) => this.#stderrText += text);
    this.exited = Promise.all([this.#child.status, stdoutDone, stderrDone]).then(([status]) => {
      this.#exitStatus = status;
      return status;
    });
  }

  /** Spawns a node. Does not wait for it to be ready: see `waitForHealthy`. */
  static async start(options: NodeProcessOptions): Promise<NodeProcess> {
    const bindPort = options.bindPort ?? await freeBindPort();
    const bindHost = options.bindHost ?? "127.0.0.1";
    const dataDir = options.dataDir ??
      Deno.makeTempDirSync({ prefix: `blixard-test-${options.id}-` });
    const args = options.rawArgs ?? [
      "node",
      "--id",
      String(options.id),
      "--bind",
      joinHostPort(bindHost, bindPort),
      "--data-dir",
      dataDir,
      "--log-format",
      options.logFormat ?? "json",
      ...(options.peers && options.peers.length > 0 ? ["--peers", options.peers.join(",")] : []),
      ...(options.args ?? []),
    ];
    const env: Record<string, string> = { ...childEnv(), ...options.env };
    return new NodeProcess({
      id: options.id,
      bindPort,
      dataDir,
      args,
      env,
      bindHost,
      netns: options.netns ?? null,
      httpAddress: options.httpAddress ?? null,
      denoFlags: options.denoFlags ?? [],
      mainPath: options.mainPath ?? MAIN_PATH,
    });
  }

  /** Everything the node logged so far. */
  get stderr(): string {
    return this.#stderrText;
  }

  /** Everything the node printed on stdout so far. */
  get stdout(): string {
    return this.#stdoutText;
  }

  /** The exit status once the child has exited, else `null`. */
  get exitStatus(): Deno.CommandStatus | null {
    return this.#exitStatus;
  }

  /** The log lines, parsed (JSON log format). Lines that are not JSON are skipped. */
  logRecords(): Record<string, unknown>[] {
    const records: Record<string, unknown>[] = [];
    for (const line of this.#stderrText.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        records.push(JSON.parse(line));
      } catch {
        // A line still being written; the next poll sees it whole.
      }
    }
    return records;
  }

  /** Waits until the log contains a line matching `pattern`; fails early if the node exits. */
  async waitForLog(pattern: RegExp, options: { timeoutMs?: number } = {}): Promise<string> {
    return await this.#poll(`log line ${pattern}`, options.timeoutMs, () => {
      return this.#stderrText.split("\n").find((line) => pattern.test(line)) ?? null;
    });
  }

  /** Waits until `GET /health` answers 200. */
  async waitForHealthy(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.#poll("GET /health 200", options.timeoutMs, async () => {
      try {
        return (await this.getText("/health")).status === 200 ? true : null;
      } catch {
        return null;
      }
    });
  }

  /** Waits until `GET /status` satisfies `predicate`, and returns that status. */
  async waitForStatus(
    description: string,
    predicate: (status: Record<string, unknown>) => boolean,
    options: { timeoutMs?: number } = {},
  ): Promise<Record<string, unknown>> {
    return await this.#poll(description, options.timeoutMs, async () => {
      try {
        const status = await this.getJson("/status");
        return predicate(status) ? status : null;
      } catch {
        return null;
      }
    });
  }

  /** `GET path` on the node's HTTP port, parsed as JSON; throws on a non-2xx answer. */
  async getJson(path: string): Promise<Record<string, unknown>> {
    const { status, text } = await this.getText(path);
    if (status < 200 || status > 299) {
      throw new Error(`GET ${path} on node ${this.id}: ${status} ${text}`);
    }
    return JSON.parse(text);
  }

  /** `GET path` on the node's HTTP address, from inside its namespace when it has one. */
  async getText(path: string): Promise<{ status: number; text: string }> {
    const url = `http://${this.httpAddress}${path}`;
    if (this.netns === null) {
      const response = await fetch(url);
      return { status: response.status, text: await response.text() };
    }
    return await curlInNetns(this.netns, url);
  }

  /** Sends `signal` and waits for the exit (SIGKILL after a grace period). */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    if (this.#exitStatus !== null) return this.#exitStatus;
    this.#signal(signal);
    const timer = setTimeout(() => this.#signal("SIGKILL"), STOP_GRACE_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** kill -9, then wait for the exit. */
  async kill(): Promise<Deno.CommandStatus> {
    return await this.stop("SIGKILL");
  }

  /**
   * SIGSTOP: the node stays alive but does nothing, like a machine that hangs or a network
   * that drops everything. `resume()` undoes it; `NodeGroup.cleanup()` resumes it too.
   */
  pause(): void {
    this.#signal("SIGSTOP");
    this.#paused = true;
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    this.#signal("SIGCONT");
    this.#paused = false;
  }

  /** Whether `pause()` stopped the node and it was not resumed since. */
  get isPaused(): boolean {
    return this.#paused && this.#exitStatus === null;
  }

  /** Waits for the exit, failing when it takes longer than `timeoutMs`. */
  async waitForExit(options: { timeoutMs?: number } = {}): Promise<Deno.CommandStatus> {
    const timeoutMs = options.timeoutMs ?? WAIT_MS_DEFAULT;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`node ${this.id} did not exit within ${timeoutMs} ms\n${this.#stderrText}`),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch (error) {
      // Already exited between the check and the signal: nothing to do.
      if (!(error instanceof TypeError)) throw error;
    }
  }

  async #poll<T>(
    what: string,
    timeoutMs = WAIT_MS_DEFAULT,
    probe: () => T | null | Promise<T | null>,
  ): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const value = await probe();
      if (value !== null) return value;
      if (this.#exitStatus !== null) {
        throw new Error(
          `node ${this.id} exited (code ${this.#exitStatus.code}) while waiting for ${what}\n${this.#stderrText}`,
        );
      }
      const intervalMs = this.netns === null ? POLL_INTERVAL_MS : NETNS_POLL_INTERVAL_MS;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    throw new Error(
      `node ${this.id}: timed out after ${timeoutMs} ms waiting for ${what}\n${this.#stderrText}`,
    );
  }
}

/** The children and temp dirs of one test; `cleanup()` in `finally` ends and removes them all. */
export class NodeGroup {
  readonly nodes: NodeProcess[] = [];
  #tempDirs: string[] = [];

  /** Starts a node with a data dir owned by the group (kept across restarts of the same id). */
  async start(
    options: Omit<NodeProcessOptions, "dataDir"> & { dataDir?: string },
  ): Promise<NodeProcess> {
    const dataDir = options.dataDir ?? this.dataDirFor(options.id);
    const node = await NodeProcess.start({ ...options, dataDir });
    this.nodes.push(node);
    return node;
  }

  /** A temp data dir for `id`, the same one every time for the same id. */
  dataDirFor(id: number): string {
    const existing = this.#tempDirs.find((dir) => dir.includes(`blixard-test-${id}-`));
    if (existing !== undefined) return existing;
    const dir = Deno.makeTempDirSync({ prefix: `blixard-test-${id}-` });
    this.#tempDirs.push(dir);
    return dir;
  }

  /** Resumes paused children, kills every child still running (SIGKILL), awaits them, removes the temp dirs. */
  async cleanup(): Promise<void> {
    for (const node of this.nodes) if (node.isPaused) node.resume();
    await Promise.all(this.nodes.map((node) => node.kill()));
    for (const dir of this.#tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** `host:port`, with an IPv6 host in brackets. */
function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Most time one `curl` in a namespace may take. */
const CURL_TIMEOUT_SECONDS = 5;

/** `GET url` with `curl` inside network namespace `netns`; throws when nothing answers. */
export async function curlInNetns(
  netns: string,
  url: string,
): Promise<{ status: number; text: string }> {
  const output = await new Deno.Command("ip", {
    args: [
      ...["netns", "exec", netns, "curl", "-sS", "--max-time", String(CURL_TIMEOUT_SECONDS)],
      ...["-w", "\n%{http_code}", url],
    ],
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`curl ${url} in ${netns}: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  const newline = text.lastIndexOf("\n");
  return { status: Number(text.slice(newline + 1)), text: text.slice(0, newline) };
}

async function readAll(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
  onText(decoder.decode());
}
