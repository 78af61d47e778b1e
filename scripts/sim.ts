/**
 * `deno task sim`: runs the deterministic cluster simulation (tests/sim/).
 *
 *   deno task sim --seed N [--steps S] [--nodes K] [--profile P]   replay one seed, trace on failure
 *   deno task sim --seeds 1000 [--from F] [--steps S] [--profile P] run seeds F..F+999 (F = 1)
 *
 * Exit codes: 0 every run passed, 1 a run failed, 2 usage error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Profile,
  PROFILES,
  type Sabotage,
  SABOTAGES,
  type ScenarioChoices,
  scenarioFor,
} from "../tests/sim/scenario.ts";
import {
  runSimulation,
  SimulationFailure,
  type SimulationReport,
} from "../tests/sim/simulation.ts";

const USAGE = `usage: deno task sim --seed N [--steps S] [--nodes K] [--profile P] [--trace-lines L]
       deno task sim --seeds COUNT [--from F] [--steps S] [--nodes K] [--profile P]
       [--sabotage S]   a deliberate fault outside Raft's model, to see the checks catch it
       [--trace-all]    print every event as it happens
profiles: ${PROFILES.join(", ")} (default mixed); sabotages: ${SABOTAGES.join(", ")}`;

/** Runs too long to list every failure in a summary are cut to this many lines. */
const FAILURES_LISTED_MAX = 50;

class UsageError extends Error {}

interface Options {
  seeds: number[];
  choices: ScenarioChoices;
  traceLines: number;
  verbose: boolean;
  /** Print every event as it happens. */
  traceAll: boolean;
}

function integerFlag(
  values: Record<string, unknown>,
  name: string,
  minimum: number,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new UsageError(`--${name} ${String(raw)}: must be an integer >= ${minimum}`);
  }
  return value;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      seed: { type: "string" },
      seeds: { type: "string" },
      from: { type: "string" },
      steps: { type: "string" },
      nodes: { type: "string" },
      profile: { type: "string" },
      sabotage: { type: "string" },
      "trace-all": { type: "boolean" },
      "trace-lines": { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) throw new UsageError("");
  const seed = integerFlag(values, "seed", 0);
  const count = integerFlag(values, "seeds", 1);
  if ((seed === undefined) === (count === undefined)) {
    throw new UsageError("give exactly one of --seed and --seeds");
  }
  const from = integerFlag(values, "from", 0) ?? 1;
  const profile = values.profile;
  if (profile !== undefined && !(PROFILES as readonly string[]).includes(profile)) {
    throw new UsageError(`--profile ${profile}: must be one of ${PROFILES.join(", ")}`);
  }
  const choices: ScenarioChoices = {};
  const steps = integerFlag(values, "steps", 1);
  const nodes = integerFlag(values, "nodes", 1);
  if (steps !== undefined) choices.steps = steps;
  if (nodes !== undefined) choices.nodes = nodes;
  if (profile !== undefined) choices.profile = profile as Profile;
  const sabotage = values.sabotage;
  if (sabotage !== undefined && !(SABOTAGES as readonly string[]).includes(sabotage)) {
    throw new UsageError(`--sabotage ${sabotage}: must be one of ${SABOTAGES.join(", ")}`);
  }
  if (sabotage !== undefined) choices.sabotage = sabotage as Sabotage;
  return {
    seeds: seed !== undefined ? [seed] : Array.from({ length: count ?? 0 }, (_, i) => from + i),
    choices,
    traceLines: integerFlag(values, "trace-lines", 0) ?? 80,
    verbose: seed !== undefined,
    traceAll: values["trace-all"] === true,
  };
}

/** Sums of the figures of the runs that passed. */
interface Totals {
  runs: number;
  steps: number;
  operationsChecked: number;
  unknownOutcomes: number;
  inconclusive: number;
  crashes: number;
  partitions: number;
  added: number;
  removed: number;
  transfers: number;
  terms: number;
  compactions: number;
  snapshotsInstalled: number;
  snapshotTransfersBroken: number;
  messagesDropped: number;
  messagesDuplicated: number;
  joinCalls: number;
  joinRequests: number;
  statusCalls: number;
  seedAttemptsFailed: number;
  joinsRetried: number;
  joinsFailed: number;
  removedByApply: number;
  removedByWatch: number;
  removedByLeaving: number;
  leaves: number;
  raftMessagesRefused: number;
}

function addReport(totals: Totals, report: SimulationReport): void {
  totals.steps += report.steps;
  totals.operationsChecked += report.operationsChecked;
  totals.unknownOutcomes += report.operations.pending;
  totals.inconclusive += report.linearizability === "unknown" ? 1 : 0;
  totals.crashes += report.faults.crashes;
  totals.partitions += report.faults.partitions;
  totals.added += report.membershipChanges.addLearner;
  totals.removed += report.membershipChanges.removeNode;
  totals.transfers += report.leadershipTransfers;
  totals.terms += report.termsWithLeader;
  totals.compactions += report.compactions;
  totals.snapshotsInstalled += report.snapshotsInstalled;
  totals.snapshotTransfersBroken += report.snapshotTransfersBroken;
  totals.messagesDropped += report.network.dropped;
  totals.messagesDuplicated += report.network.duplicated;
  totals.joinCalls += report.rpc.joinCalls;
  totals.joinRequests += report.joinRequests;
  totals.statusCalls += report.rpc.statusCalls;
  totals.seedAttemptsFailed += report.joiners.seedAttemptsFailed;
  totals.joinsRetried += report.joiners.retried;
  totals.joinsFailed += report.joiners.failed;
  totals.removedByApply += report.removedNodes.applied;
  totals.removedByWatch += report.removedNodes.watch;
  totals.removedByLeaving += report.removedNodes.left;
  totals.leaves += report.leaves;
  totals.raftMessagesRefused += report.raftMessagesRefused;
}

function describeReport(report: SimulationReport): string {
  const changes = report.membershipChanges;
  const faults = report.faults;
  return [
    `seed ${report.seed}: passed, ${report.steps} units, ${report.operationsChecked} operations checked ` +
    `(${report.operations.completed} completed, ${report.operations.pending} unknown outcome), ` +
    `linearizability ${report.linearizability}`,
    `  faults: ${faults.crashes} crashes, ${faults.restarts} restarts, ${faults.partitions} partitions; ` +
    `network: ${report.network.sent} sent, ${report.network.dropped} dropped, ${report.network.duplicated} duplicated, ` +
    `${report.raftMessagesRefused} refused by the receiver's transport`,
    `  membership: ${changes.addLearner} added, ${changes.promoteLearner} promoted, ${changes.removeNode} removed; ` +
    `${report.leadershipTransfers} transfers, ${report.termsWithLeader} terms with a leader, ` +
    `${report.compactions} compactions, ${report.snapshotsInstalled} snapshots installed, ` +
    `commit index ${report.committedIndexMax}`,
    `  rpc: ${describeRpc(report.joinRequests, report.rpc.joinCalls, report.rpc.statusCalls)}; ` +
    `joiners: ${describeJoiners(report.joiners)}; ` +
    `removed nodes stopped: ${report.removedNodes.applied} on applying their removal, ` +
    `${report.removedNodes.watch} told by their removal watch, ${report.removedNodes.left} after ` +
    `leaving (${report.leaves} leaves answered)`,
  ].join("\n");
}

function describeRpc(joinRequests: number, joinCalls: number, statusCalls: number): string {
  return `${joinRequests} join requests (${joinCalls - joinRequests} forwarded by a follower), ` +
    `${statusCalls} status requests`;
}

function describeJoiners(
  joiners: { seedAttemptsFailed: number; retried: number; failed: number },
): string {
  return `${joiners.seedAttemptsFailed} seed attempts failed, ${joiners.retried} join attempts ` +
    `retried, ${joiners.failed} joins failed`;
}

function describeFailure(failure: SimulationFailure, options: Options): string {
  const trace = failure.trace.slice(Math.max(0, failure.trace.length - options.traceLines));
  const flags = Object.entries(options.choices).map(([name, value]) => ` --${name} ${value}`).join(
    "",
  );
  return [
    failure.message,
    `replay: deno task sim --seed ${failure.seed}${flags}`,
    ...(failure.kind === "linearizability"
      ? ["(the events below end the run; --trace-all prints those around the time named above)"]
      : []),
    `last ${trace.length} events:`,
    ...trace,
    failure.message,
  ].join("\n");
}

function describeTotals(
  totals: Totals,
  options: Options,
  failures: number,
  seconds: string,
): string {
  const profile = options.choices.profile ?? "mixed";
  return [
    `${totals.runs} seeds (${options.seeds[0]}..${options.seeds.at(-1)}, profile ${profile}), ` +
    `${totals.steps} units of simulated time, ${totals.operationsChecked} operations checked for ` +
    `linearizability (${totals.unknownOutcomes} with unknown outcome), ${totals.inconclusive} checks ` +
    `inconclusive (budget), ${failures} violations, ${seconds} s`,
    `passed runs had: ${totals.crashes} crashes, ${totals.partitions} partitions, ` +
    `${totals.messagesDropped} messages dropped, ${totals.messagesDuplicated} duplicated, ` +
    `${totals.raftMessagesRefused} refused by the receiver's transport, ` +
    `${totals.added} members added, ${totals.removed} removed, ${totals.transfers} leadership transfers, ` +
    `${totals.terms} terms with a leader, ${totals.compactions} compactions, ` +
    `${totals.snapshotsInstalled} snapshots installed (` +
    `${totals.snapshotTransfersBroken} transfers broken between chunks); ` +
    `${describeRpc(totals.joinRequests, totals.joinCalls, totals.statusCalls)}; joiners: ` +
    `${
      describeJoiners({
        seedAttemptsFailed: totals.seedAttemptsFailed,
        retried: totals.joinsRetried,
        failed: totals.joinsFailed,
      })
    }; removed nodes ` +
    `stopped: ${totals.removedByApply} on applying their removal, ${totals.removedByWatch} told ` +
    `by their removal watch, ${totals.removedByLeaving} after leaving (${totals.leaves} leaves ` +
    `answered)`,
  ].join("\n");
}

async function run(options: Options): Promise<number> {
  const started = performance.now();
  const totals: Totals = {
    runs: 0,
    steps: 0,
    operationsChecked: 0,
    unknownOutcomes: 0,
    inconclusive: 0,
    crashes: 0,
    partitions: 0,
    added: 0,
    removed: 0,
    transfers: 0,
    terms: 0,
    compactions: 0,
    snapshotsInstalled: 0,
    snapshotTransfersBroken: 0,
    messagesDropped: 0,
    messagesDuplicated: 0,
    joinCalls: 0,
    joinRequests: 0,
    statusCalls: 0,
    seedAttemptsFailed: 0,
    joinsRetried: 0,
    joinsFailed: 0,
    removedByApply: 0,
    removedByWatch: 0,
    removedByLeaving: 0,
    leaves: 0,
    raftMessagesRefused: 0,
  };
  const failures: SimulationFailure[] = [];
  const inconclusiveSeeds: number[] = [];
  for (const seed of options.seeds) {
    try {
      const followTrace = options.traceAll ? (line: string) => console.log(line) : undefined;
      const report = await runSimulation(
        scenarioFor(seed, options.choices),
        followTrace === undefined ? {} : { followTrace },
      );
      addReport(totals, report);
      if (report.linearizability === "unknown") inconclusiveSeeds.push(seed);
      if (options.verbose) console.log(describeReport(report));
    } catch (error) {
      if (!(error instanceof SimulationFailure)) throw error;
      failures.push(error);
      console.log(options.verbose ? describeFailure(error, options) : error.message);
    }
    totals.runs += 1;
    if (!options.verbose && totals.runs % 100 === 0) {
      console.log(`… ${totals.runs}/${options.seeds.length} seeds, ${failures.length} failed`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(describeTotals(totals, options, failures.length, seconds));
  if (inconclusiveSeeds.length > 0) {
    console.log(`inconclusive seeds: ${inconclusiveSeeds.join(", ")}`);
  }
  if (failures.length > 0) {
    const listed = failures.slice(0, FAILURES_LISTED_MAX).map((failure) =>
      `  seed ${failure.seed}: ${failure.kind}`
    );
    console.log(["failed seeds:", ...listed].join("\n"));
  }
  return failures.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await run(parseOptions(Deno.args)));
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof TypeError && "code" in error)) {
      throw error;
    }
    if (error.message !== "") console.error(error.message);
    console.error(USAGE);
    Deno.exit(2);
  }
}
