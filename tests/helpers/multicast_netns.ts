/**
 * A network namespace of a test's own where multicast works on loopback: the only place a
 * test may send multicast. `withMulticastNetns` creates `blx-mdns-<random>` (with
 * `BLIXARD_TEST_NETNS_PREFIX` set, that prefix instead of `blx-mdns`), brings `lo` up with
 * multicast and a route for 224.0.0.0/4, runs the test, and deletes the namespace even
 * when the test fails. `multicastNetnsUnavailable` says why it cannot run here (not
 * root, no `ip`, no curl to reach nodes inside), for the test's `ignore`.
 *
 * @module
 */

const MDNS_TOOL_PATH = new URL("./mdns_tool.ts", import.meta.url).pathname;

/** Why namespace tests cannot run on this machine, or `null` when they can. */
export function multicastNetnsUnavailable(): string | null {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "creating a network namespace needs root";
  for (const tool of ["ip", "curl"]) {
    if (!commandExists(tool)) return `the '${tool}' command is not installed`;
  }
  return null;
}

/** Whether `tool` is an executable file on the PATH. */
export function commandExists(tool: string): boolean {
  const path = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  return path.split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Runs `ip` with `args`; throws with its stderr when it fails. */
async function ip(...args: string[]): Promise<void> {
  const output = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!output.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
}

/** The namespace a test runs in. */
export interface MulticastNetns {
  name: string;
  /** `["ip", "netns", "exec", name]`: the command prefix of a process inside. */
  prefix: string[];
}

/**
 * The start of the namespaces' names: `BLIXARD_TEST_NETNS_PREFIX`, so that sessions sharing
 * the machine can tell theirs apart, else `blx-mdns`.
 */
const NAME_PREFIX = Deno.env.get("BLIXARD_TEST_NETNS_PREFIX") ?? "blx-mdns";

/** Creates the namespace, runs `test` in it, deletes it (also when `test` throws). */
export async function withMulticastNetns(test: (netns: MulticastNetns) => Promise<void>) {
  const name = `${NAME_PREFIX}-${crypto.randomUUID().slice(0, 8)}`;
  await ip("netns", "add", name);
  try {
    await ip("-n", name, "link", "set", "lo", "up");
    await ip("-n", name, "link", "set", "lo", "multicast", "on");
    await ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lo");
    await test({ name, prefix: ["ip", "netns", "exec", name] });
  } finally {
    await ip("netns", "del", name);
  }
}

/** A run of `tests/helpers/mdns_tool.ts` inside the namespace. */
export class MdnsTool {
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<void>;
  #stdout = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    const decoder = new TextDecoder();
    this.#output = (async () => {
      for await (const chunk of child.stdout) {
        this.#stdout += decoder.decode(chunk, { stream: true });
      }
    })();
  }

  /** Starts `mdns_tool.ts MODE ...args` inside `netns`. */
  static start(netns: MulticastNetns, args: string[]): MdnsTool {
    const [command, ...prefixArgs] = netns.prefix;
    const child = new Deno.Command(command!, {
      args: [...prefixArgs, Deno.execPath(), "run", "-A", MDNS_TOOL_PATH, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return new MdnsTool(child);
  }

  /** Runs the tool to its end and returns its stdout lines. */
  static async run(netns: MulticastNetns, args: string[]): Promise<string[]> {
    const tool = MdnsTool.start(netns, args);
    const status = await tool.#child.status;
    await tool.#output;
    if (!status.success) throw new Error(`mdns_tool ${args.join(" ")} exited ${status.code}`);
    return tool.lines;
  }

  /** The lines printed so far. */
  get lines(): string[] {
    return this.#stdout.split("\n").filter((line) => line !== "");
  }

  /** Ends the tool (SIGTERM, by its pid) and waits for it. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await this.#child.status;
    await this.#output;
  }
}
