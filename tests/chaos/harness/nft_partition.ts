/**
 * Network partitions between real nodes on loopback, with nftables.
 *
 * Everything lives in one table of the harness's own, `inet blixard_chaos_<pid>_<random>` (two
 * runs never share one), with one chain on the input hook: a datagram is lost on arrival,
 * as on a real network, while its sender's send succeeds (a drop on the output hook would
 * fail the send with EPERM, which a real partition never does). A cut drops UDP from one
 * node's P2P port to another's, and nothing else: clients, whose endpoints use other
 * ports, still reach every node, and HTTP (TCP) still answers, so a read served by a
 * cut-off old leader is a real test. `close()` deletes the table; the harness calls it in
 * `finally` and from its signal handlers, so a failed run leaves no rule behind.
 *
 * @module
 */

import { runChecked, runCommand, toolPath } from "./system_command.ts";

/** A one-way cut: UDP from P2P port `from` to P2P port `to` is dropped. */
export interface Cut {
  from: number;
  to: number;
}

/** Most rules one partition may hold: 5 nodes cut both ways is 20. */
const CUTS_MAX = 256;

/** The harness's own nftables table; `open()` creates it, `close()` deletes it. */
export class NftPartition {
  /** `blixard_chaos_<pid>_<random>`. */
  readonly table: string;
  #nft: string;
  #open = false;
  #cuts: Cut[] = [];

  private constructor(nft: string, suffix: string) {
    this.#nft = nft;
    this.table = `blixard_chaos_${suffix}`;
  }

  /** Creates the table and its chain. Throws when `nft` is missing or refuses. */
  static async open(options: { suffix?: string } = {}): Promise<NftPartition> {
    const nft = await toolPath("nft");
    if (nft === null) throw new Error("nft is not installed (apt-get install nftables)");
    // The pid keeps two processes apart, the random part two test files of one `deno test`.
    const suffix = options.suffix ??
      `${Deno.pid}_${crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16)}`;
    const partition = new NftPartition(nft, suffix);
    await runChecked(nft, ["-f", "-"], {
      stdin: `table inet ${partition.table} {\n` +
        `  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n`,
    });
    partition.#open = true;
    return partition;
  }

  /** The cuts in force. */
  get cuts(): readonly Cut[] {
    return this.#cuts;
  }

  /** Replaces the cuts in force with `cuts` (atomically: one nft transaction). */
  async set(cuts: readonly Cut[]): Promise<void> {
    if (!this.#open) throw new Error(`nft table ${this.table} is closed`);
    if (cuts.length > CUTS_MAX) throw new RangeError(`${cuts.length} cuts; at most ${CUTS_MAX}`);
    for (const { from, to } of cuts) {
      if (!isPort(from) || !isPort(to)) throw new RangeError(`bad cut ${from} -> ${to}`);
    }
    const lines = [`flush chain inet ${this.table} input`];
    for (const { from, to } of cuts) {
      // Loopback only: the rule can match nothing else.
      lines.push(
        `add rule inet ${this.table} input ip daddr 127.0.0.0/8 udp sport ${from} ` +
          `udp dport ${to} drop`,
      );
    }
    await runChecked(this.#nft, ["-f", "-"], { stdin: lines.join("\n") + "\n" });
    this.#cuts = [...cuts];
  }

  /** Drops every cut: the network is whole again. */
  async heal(): Promise<void> {
    await this.set([]);
  }

  /** Deletes the table. Safe to call twice and after a failed `open()`. */
  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    this.#cuts = [];
    const result = await runCommand(this.#nft, ["delete", "table", "inet", this.table]);
    if (result.code !== 0 && !/No such file/.test(result.stderr)) {
      throw new Error(`nft delete table inet ${this.table}: ${result.stderr.trim()}`);
    }
  }
}

/** Cuts that separate the ports of `sideA` from those of `sideB`, in `direction`. */
export function cutsBetween(
  sideA: readonly number[],
  sideB: readonly number[],
  direction: "both" | "aToB" = "both",
): Cut[] {
  const cuts: Cut[] = [];
  for (const a of sideA) {
    for (const b of sideB) {
      cuts.push({ from: a, to: b });
      if (direction === "both") cuts.push({ from: b, to: a });
    }
  }
  return cuts;
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65_535;
}
