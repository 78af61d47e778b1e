import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { MemoryStorage } from "../storage/memory_storage.ts";
import { InvariantViolation } from "../util/assert.ts";
import { RaftLog } from "./raft_log.ts";
import type { Entry } from "./types.ts";

function entry(index: number, term: number): Entry {
  return { type: "normal", index, term, data: new Uint8Array(8) };
}

/** Entries with the given terms, starting at index `first`. */
function entriesWithTerms(first: number, terms: number[]): Entry[] {
  return terms.map((term, i) => entry(first + i, term));
}

/** A log whose storage holds entries with `storedTerms` from index 1, committed up to `committed`. */
function logWith(storedTerms: number[], committed = 0): RaftLog {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: storedTerms.at(-1) ?? 0, vote: 0, commit: committed },
    snapshot: null,
    entries: entriesWithTerms(1, storedTerms),
  });
  return new RaftLog(storage, { committed, applied: 0, maxCommittedBytesPerReady: 1 << 20 });
}

Deno.test("RaftLog.findConflict() returns the first mismatching index, or 0 when all match", () => {
  const log = logWith([1, 2, 3]);
  strictEqual(log.findConflict(entriesWithTerms(1, [1, 2, 3])), 0);
  strictEqual(log.findConflict(entriesWithTerms(2, [2, 3, 4, 4])), 4);
  strictEqual(log.findConflict(entriesWithTerms(2, [2, 4])), 3);
  strictEqual(log.findConflict([]), 0);
});

Deno.test("RaftLog.findConflictByTerm() skips back over entries of later terms", () => {
  const log = logWith([1, 1, 2, 2, 5, 5, 5]);
  deepStrictEqual(log.findConflictByTerm(7, 3), { index: 4, term: 2 });
  deepStrictEqual(log.findConflictByTerm(7, 5), { index: 7, term: 5 });
  deepStrictEqual(log.findConflictByTerm(4, 1), { index: 2, term: 1 });
  deepStrictEqual(log.findConflictByTerm(4, 0), { index: 0, term: 0 });
});

Deno.test("RaftLog.isUpToDate() compares last term first, then last index (Raft §5.4.1)", () => {
  const log = logWith([1, 2, 2]);
  deepStrictEqual(
    [
      log.isUpToDate({ index: 1, term: 3 }),
      log.isUpToDate({ index: 3, term: 2 }),
      log.isUpToDate({ index: 2, term: 2 }),
      log.isUpToDate({ index: 9, term: 1 }),
    ],
    [true, true, false, false],
  );
});

Deno.test("RaftLog.append() replaces an uncommitted suffix and refuses to truncate committed entries", () => {
  const log = logWith([1, 1, 1, 1], 2);
  strictEqual(log.append(entriesWithTerms(3, [2, 2, 2])), 5);
  deepStrictEqual([log.term(2), log.term(3), log.term(5), log.term(6)], [1, 2, 2, null]);
  throws(() => log.append(entriesWithTerms(2, [3])), InvariantViolation);
  throws(() => log.append(entriesWithTerms(7, [3])), InvariantViolation);
});

Deno.test("RaftLog.slice() joins stored and unstable entries and honours maxBytes", () => {
  const log = logWith([1, 1, 1]);
  log.append(entriesWithTerms(4, [2, 2, 2]));
  deepStrictEqual(log.slice(2, 7, 1 << 20).map((e) => e.index), [2, 3, 4, 5, 6]);
  // 32 bytes per entry: three fit in 100 bytes, across the stored/unstable boundary.
  deepStrictEqual(log.slice(2, 7, 100).map((e) => e.index), [2, 3, 4]);
  deepStrictEqual(log.slice(5, 7, 0).map((e) => e.index), [5]);
  deepStrictEqual(log.entriesFrom(7, 100), []);
});

Deno.test("RaftLog.maybeCommit() commits only an entry of the given term (Raft §5.4.2)", () => {
  const log = logWith([1, 1, 2, 3]);
  strictEqual(log.maybeCommit(3, 3), false);
  strictEqual(log.committed, 0);
  strictEqual(log.maybeCommit(4, 3), true);
  strictEqual(log.committed, 4);
  log.commitTo(2);
  strictEqual(log.committed, 4);
  throws(() => log.commitTo(5), InvariantViolation);
});

Deno.test("RaftLog.nextCommittedEntries() returns committed entries after applied, limited in bytes", () => {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 1, vote: 0, commit: 5 },
    snapshot: null,
    entries: entriesWithTerms(1, [1, 1, 1, 1, 1]),
  });
  const log = new RaftLog(storage, { committed: 5, applied: 1, maxCommittedBytesPerReady: 64 });
  deepStrictEqual(log.nextCommittedEntries().map((e) => e.index), [2, 3]);
  log.appliedTo(3);
  deepStrictEqual(log.nextCommittedEntries().map((e) => e.index), [4, 5]);
  log.appliedTo(5);
  strictEqual(log.hasNextCommittedEntries(), false);
  throws(() => log.appliedTo(4), InvariantViolation);
});

Deno.test("RaftLog.restore() replaces the log by a snapshot and hides committed entries until it is installed", () => {
  const log = logWith([1, 1, 1], 1);
  log.restore({
    metadata: { index: 10, term: 4, confState: { voters: [1], learners: [] } },
    data: new Uint8Array(),
  });
  deepStrictEqual([log.firstIndex(), log.lastIndex(), log.lastTerm(), log.committed], [
    11,
    10,
    4,
    10,
  ]);
  strictEqual(log.term(3), null);
  deepStrictEqual(log.nextCommittedEntries(), []);
  log.unstable.stableSnapshotTo(10);
  log.appliedTo(10);
  strictEqual(log.hasNextCommittedEntries(), false);
});

Deno.test("RaftLog refuses an applied index behind the snapshot or ahead of the commit index", () => {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 1, vote: 0, commit: 2 },
    snapshot: null,
    entries: entriesWithTerms(1, [1, 1, 1]),
  });
  throws(
    () => new RaftLog(storage, { committed: 2, applied: 3, maxCommittedBytesPerReady: 64 }),
    InvariantViolation,
  );
  storage.compact({
    metadata: { index: 2, term: 1, confState: { voters: [1], learners: [] } },
    data: new Uint8Array(),
  });
  throws(
    () => new RaftLog(storage, { committed: 2, applied: 1, maxCommittedBytesPerReady: 64 }),
    InvariantViolation,
  );
  strictEqual(
    new RaftLog(storage, { committed: 2, applied: 2, maxCommittedBytesPerReady: 64 }).firstIndex(),
    3,
  );
});
