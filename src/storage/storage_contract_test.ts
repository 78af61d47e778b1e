/**
 * The behaviour every `DurableStorage` shares, run against `MemoryStorage` (the simulator's)
 * and `SqliteStorage` (the node's), so that a simulation run says something about the node.
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import type { Entry, MembershipChange, Snapshot } from "../raft/types.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { SqliteStorage } from "./sqlite_storage.ts";
import type { DurableStorage } from "./storage.ts";

/** Makes storages of one kind and restarts them the way a crashed node restarts. */
interface StorageKind {
  name: string;
  /** A fresh, empty storage plus what to call when the test is done. */
  create(): { storage: DurableStorage; cleanup: () => void };
  /** The storage a node restarted after a crash finds (only what persist accepted). */
  restart(storage: DurableStorage): DurableStorage;
}

const memoryKind: StorageKind = {
  name: "MemoryStorage",
  create: () => ({ storage: new MemoryStorage(), cleanup: () => {} }),
  restart: (storage) => MemoryStorage.fromDurableImage((storage as MemoryStorage).durableImage()),
};

const sqliteDirs = new Map<DurableStorage, string>();
const sqliteKind: StorageKind = {
  name: "SqliteStorage",
  create() {
    const dir = Deno.makeTempDirSync({ prefix: "blixard-contract-" });
    const storage = SqliteStorage.open(dir);
    sqliteDirs.set(storage, dir);
    return {
      storage,
      cleanup: () => {
        for (const [open, openDir] of sqliteDirs) {
          if (openDir === dir) (open as SqliteStorage).close();
        }
        Deno.removeSync(dir, { recursive: true });
      },
    };
  },
  restart(storage) {
    const dir = sqliteDirs.get(storage)!;
    (storage as SqliteStorage).close();
    const reopened = SqliteStorage.open(dir);
    sqliteDirs.set(reopened, dir);
    return reopened;
  },
};

function normal(index: number, term: number, size = 8): Entry {
  return { type: "normal", index, term, data: new Uint8Array(size).fill(index % 256) };
}

function normals(first: number, last: number, term: number, size = 8): Entry[] {
  return Array.from({ length: last - first + 1 }, (_, i) => normal(first + i, term, size));
}

function membership(index: number, term: number, change: MembershipChange): Entry {
  return { type: "membership", index, term, change };
}

function snapshotAt(index: number, term: number): Snapshot {
  return {
    metadata: { index, term, confState: { voters: [1, 2], learners: [3] } },
    data: new Uint8Array([9, 8, 7]),
  };
}

function terms(storage: DurableStorage, first: number, last: number): (number | null)[] {
  return Array.from({ length: last - first + 1 }, (_, i) => storage.term(first + i));
}

/** Appends `entries` with a hard state whose term and commit allow them. */
function append(storage: DurableStorage, entries: Entry[], commit = 0): void {
  const term = Math.max(storage.initialState().hardState.term, ...entries.map((e) => e.term));
  storage.persist({ hardState: { term, vote: 0, commit }, entries, snapshot: null });
}

function defineContract(kind: StorageKind): void {
  const test = (name: string, body: (storage: DurableStorage) => DurableStorage | void) => {
    Deno.test(`${kind.name}: ${name}`, () => {
      const { storage, cleanup } = kind.create();
      try {
        body(storage);
      } finally {
        cleanup();
      }
    });
  };

  test("a fresh storage is empty: index 0, term 0, no members", (storage) => {
    deepStrictEqual(storage.initialState(), {
      hardState: { term: 0, vote: 0, commit: 0 },
      confState: { voters: [], learners: [] },
    });
    deepStrictEqual([storage.firstIndex(), storage.lastIndex()], [1, 0]);
    deepStrictEqual([storage.term(0), storage.term(1)], [0, null]);
    strictEqual(storage.snapshot().metadata.index, 0);
  });

  test("persist() appends entries that entries() and term() read back", (storage) => {
    append(storage, [...normals(1, 3, 1), ...normals(4, 5, 2)]);
    deepStrictEqual([storage.firstIndex(), storage.lastIndex()], [1, 5]);
    deepStrictEqual(terms(storage, 0, 6), [0, 1, 1, 1, 2, 2, null]);
    deepStrictEqual(storage.entries(2, 5, Infinity), [normal(2, 1), normal(3, 1), normal(4, 2)]);
  });

  test("persist() replaces a conflicting suffix from the first new index", (storage) => {
    append(storage, normals(1, 5, 1));
    append(storage, normals(3, 4, 2, 3));
    strictEqual(storage.lastIndex(), 4);
    deepStrictEqual(terms(storage, 1, 5), [1, 1, 2, 2, null]);
    deepStrictEqual(storage.entries(3, 5, Infinity), normals(3, 4, 2, 3));
  });

  test("persist() refuses entries that would leave a gap", (storage) => {
    append(storage, normals(1, 2, 1));
    throws(() => append(storage, normals(4, 5, 1)));
    strictEqual(storage.lastIndex(), 2);
  });

  test("persist() refuses a commit index beyond the last index", (storage) => {
    append(storage, normals(1, 2, 1));
    throws(() =>
      storage.persist({ hardState: { term: 1, vote: 0, commit: 3 }, entries: [], snapshot: null })
    );
  });

  test("entries() refuses ranges outside [firstIndex, lastIndex + 1)", (storage) => {
    append(storage, normals(1, 4, 1));
    throws(() => storage.entries(0, 2, Infinity));
    throws(() => storage.entries(2, 6, Infinity));
    throws(() => storage.entries(3, 3, Infinity));
    deepStrictEqual(storage.entries(4, 5, Infinity), [normal(4, 1)]);
  });

  test("entries() stops at maxBytes but always returns one entry", (storage) => {
    append(storage, normals(1, 6, 1, 100));
    const bytesEach = 24 + 100;
    strictEqual(storage.entries(1, 7, 0).length, 1);
    strictEqual(storage.entries(1, 7, bytesEach * 3).length, 3);
    strictEqual(storage.entries(1, 7, bytesEach * 3 + 1).length, 3);
    strictEqual(storage.entries(1, 7, bytesEach * 4 - 1).length, 3);
    strictEqual(storage.entries(2, 7, Infinity).length, 5);
  });

  test("compact() records the snapshot and drops the entries it covers", (storage) => {
    append(storage, [...normals(1, 3, 1), ...normals(4, 6, 2)], 5);
    const snapshot = { ...snapshotAt(4, 2), data: new Uint8Array([1, 2, 3, 4]) };
    storage.compact(snapshot);
    deepStrictEqual([storage.firstIndex(), storage.lastIndex()], [5, 6]);
    deepStrictEqual(terms(storage, 3, 7), [null, 2, 2, 2, null]);
    deepStrictEqual(storage.snapshot(), snapshot);
    deepStrictEqual(storage.entries(5, 7, Infinity), normals(5, 6, 2));
    throws(() => storage.entries(4, 6, Infinity));
  });

  test("compact() refuses an index that is not committed or a term that does not match", (storage) => {
    append(storage, normals(1, 4, 1), 2);
    throws(() => storage.compact(snapshotAt(3, 1)));
    throws(() => storage.compact(snapshotAt(2, 7)));
    strictEqual(storage.firstIndex(), 1);
  });

  test("compact() up to the last index leaves an empty log after the snapshot", (storage) => {
    append(storage, normals(1, 3, 1), 3);
    storage.compact(snapshotAt(3, 1));
    deepStrictEqual([storage.firstIndex(), storage.lastIndex(), storage.term(3)], [4, 3, 1]);
    append(storage, normals(4, 4, 2), 3);
    deepStrictEqual(terms(storage, 3, 4), [1, 2]);
  });

  test("a snapshot newer than a log that does not contain it replaces the whole log", (storage) => {
    append(storage, normals(1, 5, 1));
    const snapshot = snapshotAt(8, 3);
    storage.persist({ hardState: { term: 3, vote: 0, commit: 8 }, entries: [], snapshot });
    deepStrictEqual([storage.firstIndex(), storage.lastIndex(), storage.term(8)], [9, 8, 3]);
    deepStrictEqual(terms(storage, 4, 9), [null, null, null, null, 3, null]);
    deepStrictEqual(storage.snapshot(), snapshot);
    deepStrictEqual(storage.initialState().confState, { voters: [1, 2], learners: [3] });
  });

  test("a snapshot not newer than the current one is ignored", (storage) => {
    append(storage, normals(1, 5, 2), 5);
    storage.compact(snapshotAt(4, 2));
    storage.persist({ hardState: null, entries: [], snapshot: snapshotAt(3, 1) });
    deepStrictEqual([storage.firstIndex(), storage.lastIndex()], [5, 5]);
    strictEqual(storage.snapshot().metadata.index, 4);
  });

  test("initialState() gives the snapshot's configuration plus every membership entry", (storage) => {
    append(storage, [
      membership(1, 1, { type: "addLearner", nodeId: 1, context: new Uint8Array([1]) }),
      membership(2, 1, { type: "promoteLearner", nodeId: 1 }),
      normal(3, 1),
      membership(4, 1, { type: "addLearner", nodeId: 2, context: new Uint8Array([2, 2]) }),
      membership(5, 1, { type: "addLearner", nodeId: 3, context: new Uint8Array() }),
      membership(6, 1, { type: "promoteLearner", nodeId: 2 }),
      membership(7, 1, { type: "removeNode", nodeId: 3 }),
      membership(8, 1, { type: "addLearner", nodeId: 4, context: new Uint8Array([4]) }),
    ], 6);
    deepStrictEqual(storage.initialState().confState, { voters: [1, 2], learners: [4] });
    const atFive = snapshotAt(5, 1);
    storage.compact({
      ...atFive,
      metadata: { ...atFive.metadata, confState: { voters: [1], learners: [2, 3] } },
    });
    // The snapshot says voter 1, learners 2 and 3; entries 6..8 promote 2, remove 3, add 4.
    deepStrictEqual(storage.initialState().confState, { voters: [1, 2], learners: [4] });
    deepStrictEqual(storage.entries(8, 9, Infinity), [
      membership(8, 1, { type: "addLearner", nodeId: 4, context: new Uint8Array([4]) }),
    ]);
  });

  test("what persist() and compact() accepted survives a restart", (first) => {
    append(first, [
      membership(1, 1, { type: "addLearner", nodeId: 1, context: new Uint8Array([5]) }),
      ...normals(2, 6, 2),
    ], 4);
    first.persist({ hardState: { term: 3, vote: 2, commit: 5 }, entries: [], snapshot: null });
    first.compact(snapshotAt(3, 2));
    const restarted = kind.restart(first);
    deepStrictEqual(restarted.initialState(), {
      hardState: { term: 3, vote: 2, commit: 5 },
      confState: { voters: [1, 2], learners: [3] },
    });
    deepStrictEqual([restarted.firstIndex(), restarted.lastIndex()], [4, 6]);
    deepStrictEqual(terms(restarted, 3, 6), [2, 2, 2, 2]);
    deepStrictEqual(restarted.entries(4, 7, Infinity), normals(4, 6, 2));
    deepStrictEqual(restarted.snapshot(), snapshotAt(3, 2));
  });
}

defineContract(memoryKind);
defineContract(sqliteKind);
