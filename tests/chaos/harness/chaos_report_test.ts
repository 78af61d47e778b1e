import assert from "node:assert/strict";
import { buildReport, emptyFigures, formatTable, longestGapMs, quantile } from "./chaos_report.ts";

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
