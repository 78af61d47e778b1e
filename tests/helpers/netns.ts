/**
 * Network namespaces of a test's own, joined by veth pairs: other networks on one machine.
 *
 * Names carry a random suffix, so that two test runs never collide; `cleanup()` (in
 * `finally`) deletes the nftables tables and then the namespaces, which takes their veth
 * ends with them. Root only: `netnsUnavailable()` says why a test must be skipped.
 *
 * @module
 */

/** Most time one command in a namespace may take. */
const COMMAND_TIMEOUT_MS = 15_000;

/** Why namespaces cannot be used here (not root, no `ip`), or `null` when they can. */
export function netnsUnavailable(): string | null {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  if (!hasCapabilities([CAP_NET_ADMIN, CAP_SYS_ADMIN])) {
    return "network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN (a container without them?)";
  }
  for (const tool of ["ip", "ss", "curl"]) {
    if (!commandExists(tool)) return `'${tool}' is not installed`;
  }
  return null;
}

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

/** Whether this process holds every capability in `bits` (from `/proc/self/status`). */
function hasCapabilities(bits: number[]): boolean {
  const status = Deno.readTextFileSync("/proc/self/status");
  const effective = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"}`);
  return bits.every((bit) => (effective >> BigInt(bit)) & 1n);
}

/** Whether `nft` is installed (the NAT test needs it). */
export function nftAvailable(): boolean {
  return commandExists("nft");
}

function commandExists(tool: string): boolean {
  const path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  return path.split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
}

/** The output of a finished command. */
export interface CommandResult {
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Runs `args` to the end within a bound; throws when it fails unless `allowFailure`. */
export async function run(
  args: string[],
  options: { allowFailure?: boolean; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const output = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdin: "null",
    signal: AbortSignal.timeout(options.timeoutMs ?? COMMAND_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  const result = {
    success: output.success,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
  if (!result.success && !options.allowFailure) {
    throw new Error(`${args.join(" ")} failed: ${result.stderr.trim()}`);
  }
  return result;
}

/** One end of a veth pair: its namespace and the addresses (with prefix) it gets. */
export interface LinkEnd {
  netns: string;
  addresses: string[];
}

/** The namespaces and nftables tables of one test. */
export class NetnsLab {
  /** Random, so that names of concurrent runs never collide. */
  readonly suffix = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36).slice(0, 6);
  #namespaces: string[] = [];
  #tables: { netns: string; table: string }[] = [];
  /** veth names, deleted from the test's own namespace too in case a move failed. */
  #vethNames: string[] = [];
  #links = 0;

  /** Creates namespace `bx-<role>-<suffix>` with its loopback up; returns its name. */
  async namespace(role: string): Promise<string> {
    const name = `bx-${role}-${this.suffix}`;
    await run(["ip", "netns", "add", name]);
    this.#namespaces.push(name);
    await this.exec(name, ["ip", "link", "set", "lo", "up"]);
    return name;
  }

  /** Joins two namespaces with a veth pair, gives each end its addresses, brings both up. */
  async link(first: LinkEnd, second: LinkEnd): Promise<void> {
    const index = this.#links++;
    // Interface names have at most 15 characters.
    const names = [`vb${this.suffix}a${index}`, `vb${this.suffix}b${index}`];
    this.#vethNames.push(names[0]!);
    await run(["ip", "link", "add", names[0]!, "type", "veth", "peer", "name", names[1]!]);
    for (const [end, name] of [[first, names[0]!], [second, names[1]!]] as const) {
      await run(["ip", "link", "set", name, "netns", end.netns]);
      for (const address of end.addresses) {
        // nodad: an IPv6 address is usable at once instead of after duplicate detection.
        const flags = address.includes(":") ? ["nodad"] : [];
        await this.exec(end.netns, ["ip", "addr", "add", address, "dev", name, ...flags]);
      }
      await this.exec(end.netns, ["ip", "link", "set", name, "up"]);
    }
  }

  /** Loads nftables `rules` (one `table ip NAME { … }`) into `netns`, removed at cleanup. */
  async nftTable(netns: string, table: string, rules: string): Promise<void> {
    this.#tables.push({ netns, table });
    const file = await Deno.makeTempFile({ prefix: "blixard-nft-" });
    try {
      await Deno.writeTextFile(file, rules);
      await this.exec(netns, ["nft", "-f", file]);
    } finally {
      await Deno.remove(file);
    }
  }

  /** Runs `args` inside `netns`. */
  exec(
    netns: string,
    args: string[],
    options: { allowFailure?: boolean; timeoutMs?: number } = {},
  ): Promise<CommandResult> {
    return run(["ip", "netns", "exec", netns, ...args], options);
  }

  /** Deletes the tables, then the namespaces (and the veth ends in them). Never throws. */
  async cleanup(): Promise<void> {
    for (const { netns, table } of this.#tables) {
      await this.exec(netns, ["nft", "delete", "table", "ip", table], { allowFailure: true })
        .catch(() => {});
    }
    for (const name of this.#namespaces) {
      await run(["ip", "netns", "delete", name], { allowFailure: true }).catch(() => {});
    }
    for (const name of this.#vethNames) {
      await run(["ip", "link", "delete", name], { allowFailure: true }).catch(() => {});
    }
  }
}
