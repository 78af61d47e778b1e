/**
 * One small run of named faults on one 3-node cluster, summed into the few figures a test
 * asserts on: the sample the suite runs so that the harness keeps working.
 *
 * @module
 */

import assert from "node:assert/strict";
import { emptyFigures, type FaultFigures } from "./chaos_report.ts";
import { type FaultEntry, runFaults } from "./fault_runner.ts";
import { FAULTS } from "./faults.ts";

/** Recording clients of a sample: enough for overlapping operations on every key. */
const SAMPLE_CLIENTS = 3;
/** A sample gives up starting cycles after this long (each cycle has its own deadlines). */
const SAMPLE_MS_MAX = 180_000;

/** The figures of a sample, summed over its faults. */
export interface SampleResult {
  cycles: number;
  operationsChecked: number;
  violations: number;
  lostAcknowledgedWrites: number;
  /** Faults with a measuring writer (the floods) and the writes it had acknowledged. */
  measuredFaults: number;
  measuredWrites: number;
  error: string | null;
  /** Everything the run noted, for assertion messages. */
  details: string;
}

/** Runs one cycle of each named fault, in order, on one 3-node cluster. */
export async function runFaultSample(faultNames: readonly string[]): Promise<SampleResult> {
  const figuresByName = new Map<string, FaultFigures>();
  const entries: FaultEntry[] = faultNames.map((name) => {
    const fault = FAULTS.find((candidate) => candidate.name === name);
    if (fault === undefined) throw new Error(`no fault ${name}`);
    const figures = figuresByName.get(name) ?? emptyFigures(fault.profile, name);
    figuresByName.set(name, figures);
    return { fault, figures };
  });
  const outcome = await runFaults(entries, {
    size: 3,
    cycles: entries.length,
    deadlineMs: performance.now() + SAMPLE_MS_MAX,
    clients: SAMPLE_CLIENTS,
  });
  const all = [...figuresByName.values()];
  const sum = (pick: (figures: FaultFigures) => number) =>
    all.reduce((total, figures) => total + pick(figures), 0);
  return {
    cycles: sum((figures) => figures.cycles),
    operationsChecked: sum((figures) => figures.operationsChecked),
    violations: sum((figures) => figures.violations + figures.undecided),
    lostAcknowledgedWrites: outcome.lostAcknowledgedWrites.length,
    measuredFaults: all.filter((figures) => figures.writer !== undefined).length,
    measuredWrites: sum((figures) => figures.writer?.latenciesMs.length ?? 0),
    error: outcome.error,
    details: [
      ...outcome.lostAcknowledgedWrites,
      ...all.flatMap((figures) => [...figures.details, ...figures.observations]),
    ].join("\n"),
  };
}

/**
 * Runs one cycle of each named fault and asserts what must hold: every cycle ran, every
 * history is linearizable, no acknowledged write was lost, the clients did work, and a
 * flood's measuring writer had writes acknowledged during it.
 */
export async function assertFaultSampleHolds(faultNames: readonly string[]): Promise<void> {
  const result = await runFaultSample(faultNames);
  assert.equal(result.error, null, result.details);
  assert.equal(result.cycles, faultNames.length, result.details);
  assert.equal(result.violations, 0, result.details);
  assert.equal(result.lostAcknowledgedWrites, 0, result.details);
  assert.ok(result.operationsChecked > 0, "the clients worked during the faults");
  if (result.measuredFaults > 0) {
    assert.ok(
      result.measuredWrites > 0,
      `the writer got writes through the flood\n${result.details}`,
    );
  }
}
