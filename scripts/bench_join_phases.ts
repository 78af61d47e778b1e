/**
 * Where a join's time goes, from the nodes' own log stamps: the phases between the joiner's
 * process spawn and its promotion to voter, for `deno task bench --only ticket` (a join by
 * invite ticket, issue 11) and the mDNS join of `scripts/bench_mdns.ts` (issue 10). Both
 * targets are joiner process start → voter < 400 ms; the phases say which part blocks it.
 *
 * Each phase is a log line (the first that matches) of the joiner or of the leader, taken
 * as milliseconds since the joiner's spawn; a phase a join does not go through (a ticket
 * join logs no "mDNS on") is left out. `startNode` is the "ready" line's stamp minus the
 * time it says the start took: what comes before it is the process boot and module loading.
 *
 * Usage: deno task bench --only ticket [--runs 7]
 *
 * @module
 */

import { BlixardClient } from "../src/client/client.ts";
import {
  NodeGroup,
  type NodeProcess,
  type NodeProcessOptions,
} from "../tests/helpers/node_process.ts";
import { summarize, type Summary } from "./bench_summary.ts";

const WAIT_MS = 30_000;

/** A phase: its name, whose log shows it, and the line that marks its end. */
interface PhaseMark {
  name: string;
  node: "joiner" | "leader";
  /** `nodeId` is the joiner's: the leader's lines name it. */
  pattern: (nodeId: number) => RegExp;
}

/** The phases of every way in, in the order a join goes through them. */
export const JOIN_PHASE_MARKS: PhaseMark[] = [
  { name: "mDNS on (endpoint bound, browsing)", node: "joiner", pattern: () => /^mDNS on/ },
  { name: "mDNS cluster chosen", node: "joiner", pattern: () => /^mDNS: joining cluster/ },
  { name: "mDNS seed found", node: "joiner", pattern: () => /^mDNS: seed found/ },
  {
    name: "ticket claimed (Iroh connect + join RPC)",
    node: "joiner",
    pattern: () => /^the invite ticket admitted/,
  },
  {
    name: "learner added (leader applied it)",
    node: "leader",
    pattern: (id) => new RegExp(`^node ${id} joined as a learner`),
  },
  { name: "listening (ready: storage, HTTP)", node: "joiner", pattern: () => /^ready node_id/ },
  { name: "seed connected (Iroh connect)", node: "joiner", pattern: () => /^connected to seed/ },
  {
    name: "join RPC answered",
    node: "joiner",
    pattern: () => /^joined cluster .* as a learner/,
  },
  { name: "first entries from the leader", node: "joiner", pattern: () => /^role follower/ },
  {
    name: "promoted (leader applied it)",
    node: "leader",
    pattern: (id) => new RegExp(`^node ${id} promoted to voter`),
  },
  { name: "voter (joiner's own log)", node: "joiner", pattern: () => /^promoted to voter/ },
];

/** One join's phases: milliseconds since the joiner's spawn, by phase name. */
export type JoinPhases = Map<string, number>;

/**
 * The phases of the join of `joiner` (spawned at `spawnedAtMs`, wall clock) into the
 * cluster that `leader` leads, from their logs so far.
 */
export function joinPhases(
  joiner: NodeProcess,
  context: { leader: NodeProcess; spawnedAtMs: number },
): JoinPhases {
  const records = {
    joiner: joiner.logRecords(),
    leader: context.leader.logRecords(),
  };
  const phases: JoinPhases = new Map();
  const ready = records.joiner.find((record) => String(record.message).startsWith("ready "));
  const startMs = (ready?.properties as { startMs?: number } | undefined)?.startMs;
  if (ready !== undefined && startMs !== undefined) {
    phases.set(
      "startNode (boot, module loading done)",
      stampOf(ready) - startMs - context.spawnedAtMs,
    );
  }
  for (const mark of JOIN_PHASE_MARKS) {
    const pattern = mark.pattern(joiner.id);
    const record = records[mark.node].find((candidate) =>
      pattern.test(String(candidate.message)) && stampOf(candidate) >= context.spawnedAtMs
    );
    if (record !== undefined) phases.set(mark.name, stampOf(record) - context.spawnedAtMs);
  }
  return phases;
}

function stampOf(record: Record<string, unknown>): number {
  return Date.parse(String(record.timestamp));
}

/** The median of each phase over `runs`, in the order of the first run that has it. */
export function summarizePhases(runs: JoinPhases[]): [string, Summary][] {
  const names = [...new Set(runs.flatMap((phases) => [...phases.keys()]))];
  return names
    .map((name): [string, Summary] => [
      name,
      summarize(runs.flatMap((phases) => phases.has(name) ? [phases.get(name)!] : [])),
    ])
    .sort((a, b) => a[1].median - b[1].median);
}

/** The phases as table rows: the median since spawn, and the step from the phase before. */
export function phaseRows(phases: [string, Summary][]): string[] {
  let previous = 0;
  return phases.map(([name, summary]) => {
    const step = summary.median - previous;
    previous = summary.median;
    return `  ${name.padEnd(44)} ${summary.median.toFixed(0).padStart(6)} ms  (+${
      step.toFixed(0)
    } ms; min ${summary.min.toFixed(0)}, max ${summary.max.toFixed(0)})`;
  });
}

/**
 * Waits until `joiner` (spawned at `spawnedAtMs`) logs its promotion: its process start →
 * voter, from its own log stamp, and the phases of its join into `leader`'s cluster.
 */
export async function timeJoin(
  joiner: NodeProcess,
  context: { leader: NodeProcess; spawnedAtMs: number },
): Promise<{ ms: number; phases: JoinPhases }> {
  const line = await joiner.waitForLog(/promoted to voter/, { timeoutMs: WAIT_MS });
  const ms = Date.parse(JSON.parse(line).timestamp) - context.spawnedAtMs;
  // The leader's "promoted" line may come a moment after the joiner's.
  const promoted = new RegExp(`node ${joiner.id} promoted to voter`);
  await context.leader.waitForLog(promoted, { timeoutMs: WAIT_MS }).catch(() => {});
  return { ms, phases: joinPhases(joiner, context) };
}

/** What a join bench measured. */
export interface JoinFigures {
  /** Joiner process spawn → its own "promoted to voter" line. */
  startToVoterMs: Summary;
  phases: [string, Summary][];
}

/** How a join bench makes its cluster and its joiners. */
export interface JoinBenchOptions {
  /** Starts the cluster to join (bench.ts: three nodes at once). */
  formCluster: (group: NodeGroup) => Promise<NodeProcess[]>;
  nodeDefaults: Pick<NodeProcessOptions, "denoFlags" | "mainPath">;
}

/**
 * Joins `runs` nodes, one at a time, into the cluster `formCluster` starts, each told how
 * by `joinerOptions` (`--peers`, `--join TICKET`): joiner process start → voter, and the
 * phases. Each joiner is removed afterwards, so every run joins the same cluster.
 */
export async function benchJoins(
  runs: number,
  options: JoinBenchOptions & {
    firstId: number;
    joinerOptions: (
      context: { client: BlixardClient; nodes: NodeProcess[] },
    ) => Promise<Pick<NodeProcessOptions, "args" | "peers">>;
  },
): Promise<JoinFigures> {
  const times: number[] = [];
  const runsPhases: JoinPhases[] = [];
  const group = new NodeGroup();
  try {
    const nodes = await options.formCluster(group);
    const client = await BlixardClient.connect(nodes[0]!.address);
    try {
      for (let run = 0; run < runs; run++) {
        const id = options.firstId + run;
        const how = await options.joinerOptions({ client, nodes });
        const leaderId = (await client.status()).leader_id;
        const leader = nodes.find((node) => node.id === leaderId) ?? nodes[0]!;
        const spawnedAtMs = Date.now();
        const joiner = await group.start({ ...options.nodeDefaults, ...how, id });
        const joined = await timeJoin(joiner, { leader, spawnedAtMs });
        times.push(joined.ms);
        runsPhases.push(joined.phases);
        await joiner.kill();
        await client.remove(id, { force: true });
      }
    } finally {
      await client.close();
    }
  } finally {
    await group.cleanup();
  }
  return { startToVoterMs: summarize(times), phases: summarizePhases(runsPhases) };
}

/** Joins by `--join TICKET` alone (a new one-use ticket each run), as `benchJoins` does. */
export function benchTicketJoin(runs: number, options: JoinBenchOptions): Promise<JoinFigures> {
  return benchJoins(runs, {
    ...options,
    firstId: 20,
    joinerOptions: async ({ client }) => {
      const { ticket } = await client.invite({ ttlMs: 60_000, uses: 1, createdBy: "bench" });
      return { args: ["--join", ticket] };
    },
  });
}
