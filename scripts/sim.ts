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
profiles: ${PROFILES.join(", ")} (default mixed)`;

/** Runs too long to list every failure in a summary are cut to this many lines. */
const FAILURES_LISTED_MAX = 50;

class UsageError extends Error {}

interface Options {
  seeds: number[];
  choices: ScenarioChoices;
  traceLines: number;
  verbose: boolean;
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
  return {
    seeds: seed !== undefined ? [seed] : Array.from({ length: count ?? 0 }, (_, i) => from + i),
    choices,
    traceLines: integerFlag(values, "trace-lines", 0) ?? 80,
    verbose: seed !== undefined,
  };
}

function describeReport(report: SimulationReport): string {
  const changes = report.membershipChanges;
  return [
    `seed ${report.seed}: passed, ${report.steps} units, ${report.operationsChecked} operations checked ` +
    `(${report.operations.completed} completed, ${report.operations.pending} unknown outcome), ` +
    `linearizability ${report.linearizability}`,
    `  faults: ${report.faults.crashes} crashes, ${report.faults.restarts} restarts, ${report.faults.partitions} partitions; ` +
    `network: ${report.network.sent} sent, ${report.network.dropped} dropped, ${report.network.duplicated} duplicated`,
    `  membership: ${changes.addLearner} added, ${changes.promoteLearner} promoted, ${changes.removeNode} removed; ` +
    `${report.leadershipTransfers} transfers, ${report.compactions} compactions, commit index ${report.committedIndexMax}`,
  ].join("\n");
}

function describeFailure(failure: SimulationFailure, traceLines: number): string {
  const trace = failure.trace.slice(-traceLines);
  return [
    failure.message,
    `replay: deno task sim --seed ${failure.seed}`,
    `last ${trace.length} events:`,
    ...trace,
    failure.message,
  ].join("\n");
}

function run(options: Options): number {
  const started = performance.now();
  const totals = { runs: 0, steps: 0, operations: 0, unknown: 0 };
  const failures: SimulationFailure[] = [];
  for (const seed of options.seeds) {
    const scenario = scenarioFor(seed, options.choices);
    try {
      const report = runSimulation(scenario);
      totals.steps += report.steps;
      totals.operations += report.operationsChecked;
      if (report.linearizability === "unknown") totals.unknown += 1;
      if (options.verbose) console.log(describeReport(report));
    } catch (error) {
      if (!(error instanceof SimulationFailure)) throw error;
      failures.push(error);
      console.log(options.verbose ? describeFailure(error, options.traceLines) : error.message);
    }
    totals.runs += 1;
    if (!options.verbose && totals.runs % 100 === 0) {
      console.log(`… ${totals.runs}/${options.seeds.length} seeds, ${failures.length} failed`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${totals.runs} seeds (${options.seeds[0]}..${options.seeds.at(-1)}, profile ${
      options.choices.profile ?? "mixed"
    }), ` +
      `${totals.steps} units of simulated time, ${totals.operations} operations checked for linearizability, ` +
      `${totals.unknown} checks inconclusive (budget), ${failures.length} violations, ${seconds} s`,
  );
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
    Deno.exit(run(parseOptions(Deno.args)));
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof TypeError && "code" in error)) {
      throw error;
    }
    if (error.message !== "") console.error(error.message);
    console.error(USAGE);
    Deno.exit(2);
  }
}
