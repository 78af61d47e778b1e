import assert from "node:assert/strict";
import {
  addWriterSample,
  buildReport,
  emptyFigures,
  formatTable,
  longestGapMs,
  quantile,
  QUIET_FAULT,
} from "./chaos_report.ts";

Deno.test("longestGapMs() is the longest stretch without an acknowledgement after the fault", () => {
  assert.equal(longestGapMs([5, 120, 130, 400, 410], 100, 500), 270);
  assert.equal(longestGapMs([], 100, 350), 250, "no acknowledgement at all: the whole window");
  assert.equal(longestGapMs([50, 600], 100, 500), 400, "acknowledgements outside do not count");
});

Deno.test("quantile() takes the nearest rank, and null for no values", () => {
  assert.equal(quantile([], 0.5), null);
  assert.equal(quantile([3, 1, 2], 0.5), 2);
  assert.equal(quantile(Array.from({ length: 100 }, (_, i) => i + 1), 0.99), 99);
  assert.equal(quantile([3, 1, 2], 1), 3);
});

Deno.test("the report sums every fault and its table has one row per fault and the totals", () => {
  const crash = { ...emptyFigures("crashes", "crash-leader"), cycles: 3, operationsChecked: 40 };
  crash.unavailabilityMs.push(100, 300, 200);
  const pause = { ...emptyFigures("pauses", "pause-leader"), cycles: 2, violations: 1 };
  const report = buildReport([crash, pause], {
    command: "deno task chaos",
    durationSeconds: 12,
    skipped: [{ fault: "isolate-leader", reason: "needs root" }],
  });
  assert.equal(report.cycles, 5);
  assert.equal(report.violations, 1);
  assert.deepEqual(report.faults[0]!.unavailabilityMs, { p50: 200, p99: 300, max: 300 });
  const table = formatTable(report);
  assert.match(table, /^crash-leader +\d/m);
  assert.match(table, /^pause-leader +\d/m);
  assert.match(table, /total: 0 runs, 5 cycles, 40 operations checked, 1 violations/);
  assert.match(table, /skipped isolate-leader: needs root/);
});

Deno.test("a flood's writer figures are summed over cycles and shown against the quiet run's", () => {
  const quiet = emptyFigures("floods", QUIET_FAULT);
  addWriterSample(quiet, { seconds: 2, latenciesMs: [10, 10, 10, 10], failed: 0 });
  const join = emptyFigures("floods", "flood-join");
  addWriterSample(join, { seconds: 1, latenciesMs: [20], failed: 1 });
  addWriterSample(join, { seconds: 1, latenciesMs: [40], failed: 0 });
  const report = buildReport([quiet, join, emptyFigures("crashes", "crash-leader")], {
    command: "deno task chaos --profile floods",
    durationSeconds: 4,
    skipped: [],
  });
  assert.deepEqual(report.faults[1]!.writer, {
    seconds: 2,
    writes: 2,
    writesPerSecond: 1,
    p50Ms: 20,
    p99Ms: 40,
    failed: 1,
  });
  assert.equal(report.faults[2]!.writer, undefined, "no writer, no figures");
  const table = formatTable(report);
  assert.match(table, /^flood-quiet +4 +2 +10 +10 +0 +1\.00x +1\.00x$/m);
  assert.match(table, /^flood-join +2 +1 +20 +40 +1 +0\.50x +4\.00x$/m);
});
