import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import type { Entry, Snapshot } from "../raft/types.ts";
import { MemoryStorage } from "./memory_storage.ts";

function entry(index: number, term: number): Entry {
  return { type: "normal", index, term, data: new Uint8Array(8) };
}

function entries(first: number, last: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index += 1) result.push(entry(index, term));
  return result;
}

function snapshotAt(index: number, term: number): Snapshot {
  return {
    metadata: { index, term, confState: { voters: [1, 2], learners: [3] } },
    data: new Uint8Array([7]),
  };
}

function founderStorage(): MemoryStorage {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 1, vote: 0, commit: 3 },
    snapshot: null,
    entries: [
      {
        type: "membership",
        index: 1,
        term: 1,
        change: { type: "addLearner", nodeId: 1, context: new Uint8Array() },
      },
      { type: "membership", index: 2, term: 1, change: { type: "promoteLearner", nodeId: 1 } },
      { type: "normal", index: 3, term: 1, data: new Uint8Array([1]) },
    ],
  });
  return storage;
}

Deno.test("MemoryStorage starts empty: no members, index 0, term 0", () => {
  const storage = new MemoryStorage();
  deepStrictEqual(storage.initialState(), {
    hardState: { term: 0, vote: 0, commit: 0 },
    confState: { voters: [], learners: [] },
  });
  deepStrictEqual([storage.firstIndex(), storage.lastIndex(), storage.term(0), storage.term(1)], [
    1,
    0,
    0,
    null,
  ]);
});

Deno.test("MemoryStorage.initialState() derives the configuration from the membership entries", () => {
  const storage = founderStorage();
  deepStrictEqual(storage.initialState(), {
    hardState: { term: 1, vote: 0, commit: 3 },
    confState: { voters: [1], learners: [] },
  });
});

Deno.test("MemoryStorage.persist() replaces the conflicting suffix of the log", () => {
  const storage = new MemoryStorage();
  storage.persist({ hardState: null, snapshot: null, entries: entries(1, 5, 1) });
  storage.persist({ hardState: null, snapshot: null, entries: entries(3, 4, 2) });
  deepStrictEqual([
    storage.lastIndex(),
    storage.term(2),
    storage.term(3),
    storage.term(4),
    storage.term(5),
  ], [
    4,
    1,
    2,
    2,
    null,
  ]);
});

Deno.test("MemoryStorage.persist() refuses entries that would leave a gap", () => {
  const storage = new MemoryStorage();
  storage.persist({ hardState: null, snapshot: null, entries: entries(1, 2, 1) });
  throws(
    () => storage.persist({ hardState: null, snapshot: null, entries: entries(4, 4, 1) }),
    /gap/,
  );
  throws(
    () =>
      storage.persist({ hardState: { term: 1, vote: 0, commit: 3 }, snapshot: null, entries: [] }),
    /commit/,
  );
});

Deno.test("MemoryStorage.entries() returns at least one entry and stops at maxBytes", () => {
  const storage = new MemoryStorage();
  storage.persist({ hardState: null, snapshot: null, entries: entries(1, 10, 1) });
  // Each entry is 24 header bytes + 8 data bytes = 32 bytes.
  deepStrictEqual(storage.entries(2, 11, 0).map((e) => e.index), [2]);
  deepStrictEqual(storage.entries(2, 11, 64).map((e) => e.index), [2, 3]);
  deepStrictEqual(storage.entries(2, 5, 1_000).map((e) => e.index), [2, 3, 4]);
  throws(() => storage.entries(0, 3, 100), RangeError);
  throws(() => storage.entries(5, 12, 100), RangeError);
});

Deno.test("MemoryStorage.compact() drops covered entries and keeps the snapshot's term", () => {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 2, vote: 1, commit: 8 },
    snapshot: null,
    entries: entries(1, 10, 2),
  });
  storage.compact(snapshotAt(6, 2));
  deepStrictEqual([storage.firstIndex(), storage.lastIndex(), storage.term(6), storage.term(5)], [
    7,
    10,
    2,
    null,
  ]);
  deepStrictEqual(storage.entries(7, 11, 1_000).map((e) => e.index), [7, 8, 9, 10]);
  deepStrictEqual(storage.initialState().confState, { voters: [1, 2], learners: [3] });
  throws(() => storage.compact(snapshotAt(9, 2)), /not committed/);
  throws(() => storage.compact(snapshotAt(8, 1)), /not in the log/);
});

Deno.test("MemoryStorage.persist() with a newer snapshot replaces the whole log", () => {
  const storage = new MemoryStorage();
  storage.persist({ hardState: null, snapshot: null, entries: entries(1, 3, 1) });
  storage.persist({
    hardState: { term: 4, vote: 0, commit: 20 },
    snapshot: snapshotAt(20, 4),
    entries: [],
  });
  deepStrictEqual([storage.firstIndex(), storage.lastIndex(), storage.term(20)], [21, 20, 4]);
  strictEqual(storage.snapshot().metadata.index, 20);
});

Deno.test("MemoryStorage.fromDurableImage() keeps what was persisted and nothing written later", () => {
  const storage = founderStorage();
  const image = storage.durableImage();
  storage.persist({
    hardState: { term: 2, vote: 1, commit: 3 },
    snapshot: null,
    entries: entries(4, 6, 2),
  });
  const restarted = MemoryStorage.fromDurableImage(image);
  deepStrictEqual([restarted.lastIndex(), restarted.initialState().hardState], [3, {
    term: 1,
    vote: 0,
    commit: 3,
  }]);
  restarted.persist({ hardState: null, snapshot: null, entries: entries(4, 4, 3) });
  deepStrictEqual([storage.term(4), restarted.term(4)], [2, 3]);
});

Deno.test("MemoryStorage: a crash keeps a synced transaction and takes back an unsynced commit index", () => {
  const storage = new MemoryStorage();
  const first = entry(1, 1);
  storage.transaction(() => {
    storage.persist({
      hardState: { term: 1, vote: 1, commit: 0 },
      entries: [first],
      snapshot: null,
    });
  }, { durable: true });
  storage.transaction(() => {
    storage.persist({ hardState: { term: 1, vote: 1, commit: 1 }, entries: [], snapshot: null });
  }, { durable: false });
  strictEqual(storage.initialState().hardState.commit, 1);
  const afterCrash = MemoryStorage.fromDurableImage(storage.durableImage());
  deepStrictEqual(afterCrash.initialState().hardState, { term: 1, vote: 1, commit: 0 });
  strictEqual(afterCrash.lastIndex(), 1);
  storage.persist({ hardState: null, entries: [], snapshot: null });
  strictEqual(storage.durableImage().hardState.commit, 1, "the next sync makes it durable");
});

Deno.test("MemoryStorage: an unsynced transaction refuses entries and new votes, and a throwing one writes nothing", () => {
  const storage = new MemoryStorage();
  const first = entry(1, 1);
  throws(
    () =>
      storage.transaction(() => {
        storage.persist({ hardState: null, entries: [first], snapshot: null });
      }, { durable: false }),
    /may only move the commit index/,
  );
  throws(
    () =>
      storage.transaction(() => {
        storage.persist({
          hardState: { term: 2, vote: 1, commit: 0 },
          entries: [],
          snapshot: null,
        });
      }, { durable: false }),
    /may only move the commit index/,
  );
  throws(() =>
    storage.transaction(() => {
      storage.persist({ hardState: null, entries: [first], snapshot: null });
      throw new Error("the apply failed");
    }, { durable: true })
  );
  strictEqual(storage.lastIndex(), 0);
});
