import { deepStrictEqual, strictEqual } from "node:assert/strict";
import type { Entry, Snapshot } from "./types.ts";
import { UnstableLog } from "./unstable_log.ts";

function entry(index: number, term: number): Entry {
  return { type: "normal", index, term, data: new Uint8Array() };
}

function snapshot(index: number, term: number): Snapshot {
  return {
    metadata: { index, term, confState: { voters: [1], learners: [] } },
    data: new Uint8Array(),
  };
}

function indexes(entries: readonly Entry[]): number[] {
  return entries.map((e) => e.index);
}

Deno.test("UnstableLog.maybeLastIndex() and maybeTerm() see entries, then the snapshot, then nothing", () => {
  const log = new UnstableLog(5);
  strictEqual(log.maybeLastIndex(), null);
  strictEqual(log.maybeTerm(5), null);
  log.truncateAndAppend([entry(5, 1), entry(6, 2)]);
  deepStrictEqual([log.maybeLastIndex(), log.maybeTerm(5), log.maybeTerm(6), log.maybeTerm(7)], [
    6,
    1,
    2,
    null,
  ]);
  log.restore(snapshot(10, 3));
  deepStrictEqual(
    [log.maybeFirstIndex(), log.maybeLastIndex(), log.maybeTerm(10), log.maybeTerm(9)],
    [11, 10, 3, null],
  );
});

Deno.test("UnstableLog.truncateAndAppend() appends, replaces a suffix, or replaces everything", () => {
  const log = new UnstableLog(5);
  log.truncateAndAppend([entry(5, 1), entry(6, 1), entry(7, 1)]);
  log.truncateAndAppend([entry(8, 1)]);
  deepStrictEqual(indexes(log.entries), [5, 6, 7, 8]);
  log.truncateAndAppend([entry(7, 2)]);
  deepStrictEqual(log.entries.map((e) => [e.index, e.term]), [[5, 1], [6, 1], [7, 2]]);
  log.truncateAndAppend([entry(3, 3), entry(4, 3)]);
  deepStrictEqual([log.offset, indexes(log.entries)], [3, [3, 4]]);
});

Deno.test("UnstableLog.stableTo() drops persisted entries but not ones replaced since", () => {
  const log = new UnstableLog(1);
  log.truncateAndAppend([entry(1, 1), entry(2, 1), entry(3, 1)]);
  log.stableTo(2, 1);
  deepStrictEqual([log.offset, indexes(log.entries)], [3, [3]]);
  log.truncateAndAppend([entry(3, 2)]);
  log.stableTo(3, 1);
  deepStrictEqual([log.offset, indexes(log.entries)], [3, [3]]);
  log.stableTo(3, 2);
  deepStrictEqual([log.offset, log.entries.length, log.maybeLastIndex()], [4, 0, null]);
});

Deno.test("UnstableLog.stableSnapshotTo() clears only the snapshot at that index", () => {
  const log = new UnstableLog(1);
  log.restore(snapshot(10, 3));
  log.stableSnapshotTo(9);
  strictEqual(log.snapshot?.metadata.index, 10);
  log.stableSnapshotTo(10);
  strictEqual(log.snapshot, null);
});

Deno.test("UnstableLog.slice() returns entries in [low, high)", () => {
  const log = new UnstableLog(4);
  log.truncateAndAppend([entry(4, 1), entry(5, 1), entry(6, 1)]);
  deepStrictEqual(indexes(log.slice(5, 7)), [5, 6]);
  deepStrictEqual(indexes(log.slice(4, 4)), []);
});
