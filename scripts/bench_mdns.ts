/**
 * The mDNS figures of issue 10, with real node processes inside a network namespace of
 * its own (`tests/helpers/multicast_netns.ts`; needs root and `ip`). Each figure is the
 * median of several runs, with min and max; times come from the nodes' own log stamps.
 *
 * - join by mDNS: joiner process start (no `--peers`) → voter, into a one-node cluster
 *   that already advertises (target < 400 ms);
 * - `--bootstrap-expect 3`: three nodes started at once, nothing → three voters (target
 *   < 1 s); every run also checks that it made one cluster of three;
 * - goodbye: SIGTERM of a node → the other logs its goodbye (target < 1 s).
 *
 * The first two are also given from the nodes' "mDNS on" log line, once the process has
 * booted and bound its endpoint: on a loaded machine the boot is most of the wall time,
 * and it is the same with `--peers`; and broken down into the join's phases from the
 * nodes' logs (`bench_join_phases.ts`: for the formation, those of the last joiner).
 *
 * With `--trace`, it runs one `--bootstrap-expect 3` formation instead and prints its
 * timeline across the three nodes: their log lines about mDNS, founding and joining, and
 * every mDNS message on the namespace's link (`mdns_tool.ts trace`), in ms since the spawn.
 *
 * The nodes run as in `bench.ts`: the minified bundle, built now, with the binary's V8 flags;
 * `--main PATH` runs another script (`main.ts` for the sources).
 *
 * Usage: deno run -A scripts/bench_mdns.ts [--runs 10] [--trace] [--main PATH], or
 * `deno task bench --only mdns`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { waitForVoters } from "../tests/helpers/cluster.ts";
import { summarize, type Summary } from "./bench_summary.ts";
import { type JoinPhases, joinPhases, phaseRows, summarizePhases } from "./bench_join_phases.ts";
import {
  MdnsTool,
  type MulticastNetns,
  multicastNetnsUnavailable,
  withMulticastNetns,
} from "../tests/helpers/multicast_netns.ts";
import {
  NodeGroup,
  type NodeProcess,
  type NodeProcessOptions,
} from "../tests/helpers/node_process.ts";
import { bundleNode } from "./bundle.ts";
import { NODE_V8_FLAGS } from "./compile.ts";

const WAIT_MS = 30_000;

/** The log stamp (Unix ms) of the first line of `node` matching `pattern`. */
async function loggedAtMs(node: NodeProcess, pattern: RegExp): Promise<number> {
  const line = await node.waitForLog(pattern, { timeoutMs: WAIT_MS });
  return Date.parse(JSON.parse(line).timestamp);
}

/** How every node is started: Deno flags and script (`benchMdns` sets them). */
let nodeDefaults: Pick<NodeProcessOptions, "denoFlags" | "mainPath"> = {};

function start(group: NodeGroup, netns: MulticastNetns, id: number, args: string[] = []) {
  return group.start({ ...nodeDefaults, id, args: ["--mdns", ...args], netns: netns.name });
}

/**
 * A figure from process spawn, the same from the first mDNS log line (boot excluded), and
 * the join's phases.
 */
interface Figures {
  fromSpawn: Summary;
  fromMdnsOn: Summary;
  /**
   * Discovery alone: from "mDNS on" to "mDNS: joining cluster" (the joiner; for the
   * formation, the last of the three to go on and the last to choose). Boot, storage and
   * the join itself are left out, which a loaded machine moves most.
   */
  discovery: Summary;
  phases: [string, Summary][];
}

/** When `node` logged that the formation rule chose a cluster to join. */
function chosenAtMs(node: NodeProcess): Promise<number> {
  return loggedAtMs(node, /"mDNS: joining cluster/);
}

/** When `node` logged that mDNS is on: its process has booted and bound its endpoint. */
function mdnsOnAtMs(node: NodeProcess): Promise<number> {
  return loggedAtMs(node, /mDNS on/);
}

async function benchJoin(netns: MulticastNetns, runs: number): Promise<Figures> {
  const times: number[] = [];
  const afterBoot: number[] = [];
  const discovery: number[] = [];
  const phases: JoinPhases[] = [];
  for (let run = 0; run < runs; run++) {
    const group = new NodeGroup();
    try {
      const member = await start(group, netns, 1, ["--discovery-wait", "0ms"]);
      await waitForVoters(member, 1);
      // A member that runs already: it has probed its name and announced (twice, 1 s apart),
      // so it answers a query at once (RFC 6762 §6 delays answers within a second of the last).
      await member.waitForLog(/advertising/, { timeoutMs: WAIT_MS });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const spawnedAtMs = Date.now();
      const joiner = await start(group, netns, 2);
      const promotedAtMs = await loggedAtMs(joiner, /promoted to voter/);
      times.push(promotedAtMs - spawnedAtMs);
      afterBoot.push(promotedAtMs - await mdnsOnAtMs(joiner));
      discovery.push(await chosenAtMs(joiner) - await mdnsOnAtMs(joiner));
      await member.waitForLog(/node 2 promoted to voter/, { timeoutMs: WAIT_MS });
      phases.push(joinPhases(joiner, { leader: member, spawnedAtMs }));
    } finally {
      await group.cleanup();
    }
  }
  return {
    fromSpawn: summarize(times),
    fromMdnsOn: summarize(afterBoot),
    discovery: summarize(discovery),
    phases: summarizePhases(phases),
  };
}

async function benchBootstrapExpect(netns: MulticastNetns, runs: number): Promise<Figures> {
  const times: number[] = [];
  const afterBoot: number[] = [];
  const discovery: number[] = [];
  const phases: JoinPhases[] = [];
  for (let run = 0; run < runs; run++) {
    const group = new NodeGroup();
    try {
      const spawnedAtMs = Date.now();
      const nodes = await Promise.all(
        [1, 2, 3].map((id) => start(group, netns, id, ["--bootstrap-expect", "3"])),
      );
      const promoted = await Promise.all(
        nodes.slice(1).map((node) => loggedAtMs(node, /promoted to voter/)),
      );
      times.push(Math.max(...promoted) - spawnedAtMs);
      // From when the last of the three has booted: the part that discovery and joining take.
      const booted = await Promise.all(nodes.map(mdnsOnAtMs));
      afterBoot.push(Math.max(...promoted) - Math.max(...booted));
      const chosen = await Promise.all(nodes.slice(1).map(chosenAtMs));
      discovery.push(Math.max(...chosen) - Math.max(...booted));
      const statuses = await Promise.all(nodes.map((node) => waitForVoters(node, 3)));
      const clusters = new Set(statuses.map((status) => status.cluster_id));
      if (clusters.size !== 1) throw new Error(`run ${run}: ${clusters.size} clusters`);
      const leader = nodes.find((node) => node.id === statuses[0]!.leader_id) ?? nodes[0]!;
      const last = promoted[0]! > promoted[1]! ? nodes[1]! : nodes[2]!;
      phases.push(joinPhases(last, { leader, spawnedAtMs }));
    } finally {
      await group.cleanup();
    }
  }
  return {
    fromSpawn: summarize(times),
    fromMdnsOn: summarize(afterBoot),
    discovery: summarize(discovery),
    phases: summarizePhases(phases),
  };
}

async function benchGoodbye(netns: MulticastNetns, runs: number): Promise<Summary> {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const group = new NodeGroup();
    try {
      const first = await start(group, netns, 1, ["--discovery-wait", "0ms"]);
      await waitForVoters(first, 1);
      const second = await start(group, netns, 2);
      await waitForVoters(second, 2);
      await first.waitForLog(/advertising/, { timeoutMs: WAIT_MS });
      await second.waitForLog(/advertising/, { timeoutMs: WAIT_MS });
      const stoppedAtMs = Date.now();
      await second.stop("SIGTERM");
      times.push(await loggedAtMs(first, /said goodbye/) - stoppedAtMs);
    } finally {
      await group.cleanup();
    }
  }
  return summarize(times);
}

/** The node log lines a formation's timeline shows. */
const TRACED_LINES =
  /mDNS|founded cluster|^ready |^role |joined cluster|joined as a learner|promoted to voter/;

/**
 * One `--bootstrap-expect 3` formation, traced: the nodes' log lines and the mDNS messages
 * on the link, as rows of ms since the spawn of the three.
 */
async function traceFormation(netns: MulticastNetns): Promise<string[]> {
  const listener = MdnsTool.start(netns, ["trace"]);
  const group = new NodeGroup();
  const rows: [number, string][] = [];
  try {
    const deadlineMs = Date.now() + WAIT_MS;
    while (!listener.lines.includes("listening")) {
      if (Date.now() > deadlineMs) throw new Error("mdns_tool trace did not start");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const spawnedAtMs = Date.now();
    const nodes = await Promise.all(
      [1, 2, 3].map((id) => start(group, netns, id, ["--bootstrap-expect", "3"])),
    );
    await Promise.all(nodes.map((node) => waitForVoters(node, 3)));
    await listener.stop();
    for (const node of nodes) {
      for (const record of node.logRecords()) {
        const message = String(record.message ?? "");
        if (!TRACED_LINES.test(message)) continue;
        const atMs = Date.parse(String(record.timestamp)) - spawnedAtMs;
        rows.push([atMs, `node ${node.id}: ${message.slice(0, 110)}`]);
      }
    }
    for (const line of listener.lines) {
      if (!line.startsWith("{")) continue;
      const message = JSON.parse(line);
      const records = [...message.proposed.map((txt: string) => `proposes ${txt}`)];
      records.push(...message.answered.map((txt: string) => `answers ${txt}`));
      rows.push([
        message.atMs - spawnedAtMs,
        `  link: ${message.kind} from :${message.fromPort} ${message.questions.join(", ")}` +
        (records.length > 0 ? `; ${records.join("; ")}` : ""),
      ]);
    }
  } finally {
    await listener.stop();
    await group.cleanup();
  }
  return rows.sort((a, b) => a[0] - b[0])
    .map(([atMs, text]) => `${String(atMs).padStart(6)} ms  ${text}`);
}

function row(name: string, summary: Summary, target: string): string {
  return `${name.padEnd(48)} ${summary.median.toFixed(0).padStart(6)} ms  (min ${
    summary.min.toFixed(0)
  }, max ${summary.max.toFixed(0)}, ${summary.runs} runs)  target ${target}`;
}

/** What `benchMdns` measured, or why it could not. */
export type MdnsFigures =
  | { skipped: string }
  | { join: Figures; formation: Figures; goodbye: Summary };

/**
 * The mDNS figures, `runs` runs each (goodbye at most 5), in a namespace of their own, the
 * nodes started with `defaults`; skipped, with the reason, where namespaces cannot be made.
 */
export async function benchMdns(
  runs: number,
  defaults: Pick<NodeProcessOptions, "denoFlags" | "mainPath">,
): Promise<MdnsFigures> {
  nodeDefaults = defaults;
  const unavailable = multicastNetnsUnavailable();
  if (unavailable !== null) return { skipped: unavailable };
  let figures: MdnsFigures | null = null;
  await withMulticastNetns(async (netns) => {
    console.error("join by mDNS…");
    const join = await benchJoin(netns, runs);
    console.error("--bootstrap-expect 3…");
    const formation = await benchBootstrapExpect(netns, runs);
    console.error("goodbye…");
    const goodbye = await benchGoodbye(netns, Math.min(runs, 5));
    figures = { join, formation, goodbye };
  });
  return figures!;
}

/** The figures as table rows. */
export function mdnsRows(figures: MdnsFigures): string[] {
  if ("skipped" in figures) return [`mDNS figures skipped: ${figures.skipped}`];
  const { join, formation, goodbye } = figures;
  return [
    row("join by mDNS, joiner process start → voter", join.fromSpawn, "< 400 ms"),
    row("  the same from its 'mDNS on' (boot excluded)", join.fromMdnsOn, "-"),
    row("  'mDNS on' → cluster chosen (discovery alone)", join.discovery, "-"),
    "  phases, median ms since the joiner's spawn:",
    ...phaseRows(join.phases),
    row("--bootstrap-expect 3, nothing → 3 voters", formation.fromSpawn, "< 1000 ms"),
    row("  the same from the last 'mDNS on'", formation.fromMdnsOn, "-"),
    row("  last 'mDNS on' → last cluster chosen", formation.discovery, "-"),
    "  phases of the last joiner, median ms since the spawn of all three:",
    ...phaseRows(formation.phases),
    row("goodbye, SIGTERM → gone from the others", goodbye, "< 1000 ms"),
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string" }, trace: { type: "boolean" }, main: { type: "string" } },
  });
  nodeDefaults = {
    denoFlags: [`--v8-flags=${NODE_V8_FLAGS.join(",")}`],
    mainPath: values.main ?? await bundleNode(),
  };
  if (values.trace) {
    const unavailable = multicastNetnsUnavailable();
    if (unavailable !== null) {
      console.error(`bench_mdns: ${unavailable}`);
      Deno.exit(1);
    }
    await withMulticastNetns(async (netns) =>
      console.log((await traceFormation(netns)).join("\n"))
    );
    Deno.exit(0);
  }
  const figures = await benchMdns(Number(values.runs ?? "10"), nodeDefaults);
  if ("skipped" in figures) {
    console.error(`bench_mdns: ${figures.skipped}`);
    Deno.exit(1);
  }
  console.log(mdnsRows(figures).join("\n"));
}
