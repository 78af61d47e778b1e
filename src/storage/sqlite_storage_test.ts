import { deepStrictEqual, match, ok, strictEqual, throws } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import fc from "fast-check";
import type { Entry, Snapshot } from "../raft/types.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { DATABASE_FILE_NAME, SqliteStorage } from "./sqlite_storage.ts";
import { type DurableStorage, StorageCorruptionError } from "./storage.ts";

/** Runs `body` with a fresh temp data dir, removed afterwards. */
async function withDataDir(body: (dataDir: string) => void | Promise<void>): Promise<void> {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-sqlite-" });
  try {
    await body(dataDir);
  } finally {
    Deno.removeSync(dataDir, { recursive: true });
  }
}

function normals(first: number, last: number, term: number): Entry[] {
  return Array.from({ length: last - first + 1 }, (_, i) => ({
    type: "normal" as const,
    index: first + i,
    term,
    data: new Uint8Array([first + i, term]),
  }));
}

function snapshotAt(index: number, term: number): Snapshot {
  return {
    metadata: { index, term, confState: { voters: [1], learners: [] } },
    data: new Uint8Array([1]),
  };
}

/** A closed database at `dataDir` holding entries 1..9 (terms 1, 2, 3), commit 6, snapshot at 3. */
function writeSampleLog(dataDir: string): void {
  const storage = SqliteStorage.open(dataDir);
  storage.persist({
    hardState: { term: 3, vote: 1, commit: 6 },
    entries: [...normals(1, 4, 1), ...normals(5, 7, 2), ...normals(8, 9, 3)],
    snapshot: null,
  });
  storage.compact(snapshotAt(3, 1));
  storage.close();
}

/** Changes the closed database at `dataDir` behind the storage's back. */
function tamper(dataDir: string, sql: string): void {
  const database = new DatabaseSync(join(dataDir, DATABASE_FILE_NAME));
  database.exec(sql);
  database.close();
}

/** Asserts that opening `dataDir` fails with a one-line corruption message matching `what`. */
function assertCorrupt(dataDir: string, what: RegExp): void {
  throws(() => SqliteStorage.open(dataDir), (error: unknown) => {
    ok(error instanceof StorageCorruptionError, `not a StorageCorruptionError: ${error}`);
    match(error.message, what);
    ok(error.message.startsWith(join(dataDir, DATABASE_FILE_NAME) + ": "), error.message);
    match(error.message, /restore .* from a backup, or remove it and re-join the cluster$/);
    ok(!error.message.includes("\n"), "message is one line");
    return true;
  });
}

Deno.test("SqliteStorage.open() sets WAL and synchronous=FULL, in normal locking mode", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    try {
      const pragma = (name: string) =>
        Object.values(storage.database.prepare(`PRAGMA ${name}`).get()!)[0];
      deepStrictEqual([pragma("journal_mode"), pragma("synchronous"), pragma("locking_mode")], [
        "wal",
        2,
        "normal",
      ]);
    } finally {
      storage.close();
    }
  }));

Deno.test("SqliteStorage.transaction({ durable: false }) commits, survives reopen, and leaves synchronous=FULL", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    const synchronous = () =>
      Object.values(storage.database.prepare("PRAGMA synchronous").get()!)[0];
    try {
      storage.transaction(() => {
        storage.persist({
          hardState: { term: 1, vote: 0, commit: 0 },
          entries: normals(1, 2, 1),
          snapshot: null,
        });
      });
      let inside: unknown = null;
      storage.transaction(() => {
        inside = synchronous();
        storage.persist({
          hardState: { term: 1, vote: 0, commit: 2 },
          entries: [],
          snapshot: null,
        });
      }, { durable: false });
      strictEqual(inside, 0, "the non-durable commit does not sync");
      strictEqual(synchronous(), 2, "FULL again for the next transaction");
      throws(
        () => storage.transaction(() => storage.transaction(() => {}, { durable: false })),
        /only the outermost transaction chooses its durability/,
      );
    } finally {
      storage.close();
    }
    const reopened = SqliteStorage.open(dataDir);
    try {
      deepStrictEqual(reopened.initialState().hardState, { term: 1, vote: 0, commit: 2 });
    } finally {
      reopened.close();
    }
  }));

Deno.test("SqliteStorage.openSnapshotReader() keeps seeing the state of its start while the storage writes", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    try {
      storage.persist({
        hardState: { term: 1, vote: 0, commit: 0 },
        entries: normals(1, 2, 1),
        snapshot: null,
      });
      const reader = storage.openSnapshotReader();
      const lastIndex = () =>
        (reader.prepare("SELECT max(log_index) AS high FROM raft_log").get() as { high: number })
          .high;
      try {
        strictEqual(lastIndex(), 2);
        storage.persist({ hardState: null, entries: normals(3, 4, 1), snapshot: null });
        strictEqual(storage.lastIndex(), 4, "the storage writes on");
        strictEqual(lastIndex(), 2, "the reader still sees its snapshot");
      } finally {
        reader.close();
      }
    } finally {
      storage.close();
    }
  }));

Deno.test("SqliteStorage keeps hard state, entries and snapshot across close and reopen", () =>
  withDataDir((dataDir) => {
    writeSampleLog(dataDir);
    const storage = SqliteStorage.open(dataDir);
    try {
      deepStrictEqual(storage.initialState().hardState, { term: 3, vote: 1, commit: 6 });
      deepStrictEqual([storage.firstIndex(), storage.lastIndex()], [4, 9]);
      deepStrictEqual([3, 4, 5, 7, 8, 9].map((i) => storage.term(i)), [1, 1, 2, 2, 3, 3]);
      deepStrictEqual(storage.entries(4, 10, Infinity), [
        ...normals(4, 4, 1),
        ...normals(5, 7, 2),
        ...normals(8, 9, 3),
      ]);
      deepStrictEqual(storage.snapshot(), snapshotAt(3, 1));
    } finally {
      storage.close();
    }
  }));

Deno.test("SqliteStorage.transaction() that throws leaves nothing of its writes, in memory or on disk", () =>
  withDataDir((dataDir) => {
    writeSampleLog(dataDir);
    const storage = SqliteStorage.open(dataDir);
    throws(() =>
      storage.transaction(() => {
        storage.persist({
          hardState: { term: 5, vote: 2, commit: 9 },
          entries: normals(8, 12, 5),
          snapshot: null,
        });
        storage.database.exec("CREATE TABLE side_effect (x)");
        strictEqual(storage.lastIndex(), 12);
        throw new Error("simulated failure while applying");
      }), /simulated failure/);
    const check = (s: SqliteStorage) => {
      deepStrictEqual(s.initialState().hardState, { term: 3, vote: 1, commit: 6 });
      deepStrictEqual([s.lastIndex(), s.term(8), s.term(10)], [9, 3, null]);
      strictEqual(
        s.database.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'side_effect'").get(),
        undefined,
      );
    };
    check(storage);
    storage.close();
    const reopened = SqliteStorage.open(dataDir);
    check(reopened);
    reopened.close();
  }));

Deno.test("SqliteStorage.transaction() nested: an inner failure undoes only the inner writes", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    storage.transaction(() => {
      storage.persist({
        hardState: { term: 1, vote: 0, commit: 0 },
        entries: normals(1, 2, 1),
        snapshot: null,
      });
      throws(() =>
        storage.transaction(() => {
          storage.persist({
            hardState: { term: 2, vote: 0, commit: 1 },
            entries: normals(3, 5, 2),
            snapshot: null,
          });
          throw new Error("inner");
        }), /inner/);
      deepStrictEqual([storage.lastIndex(), storage.term(3)], [2, null]);
      storage.transaction(() =>
        storage.persist({ hardState: { term: 1, vote: 1, commit: 2 }, entries: [], snapshot: null })
      );
    });
    storage.close();
    const reopened = SqliteStorage.open(dataDir);
    try {
      deepStrictEqual([reopened.lastIndex(), reopened.initialState().hardState], [2, {
        term: 1,
        vote: 1,
        commit: 2,
      }]);
      const { count } = reopened.database.prepare("SELECT count(*) AS count FROM raft_log")
        .get() as { count: number };
      strictEqual(count, 2);
    } finally {
      reopened.close();
    }
  }));

Deno.test("SqliteStorage.transaction() nested: inner writes commit only with the outermost", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    throws(() =>
      storage.transaction(() => {
        storage.transaction(() => {
          storage.persist({
            hardState: { term: 1, vote: 0, commit: 0 },
            entries: normals(1, 2, 1),
            snapshot: null,
          });
        });
        ok(storage.inTransaction());
        throw new Error("outer");
      }), /outer/);
    strictEqual(storage.lastIndex(), 0);
    storage.close();
    const reopened = SqliteStorage.open(dataDir);
    strictEqual(reopened.lastIndex(), 0);
    reopened.close();
  }));

Deno.test("SqliteStorage.transaction() refuses an async function and rolls it back", () =>
  withDataDir(async (dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    try {
      let promise: Promise<void> | null = null;
      throws(() =>
        storage.transaction(() => {
          storage.persist({
            hardState: { term: 1, vote: 0, commit: 0 },
            entries: normals(1, 1, 1),
            snapshot: null,
          });
          promise = Promise.resolve();
          return promise;
        }), /synchronous/);
      await promise;
      strictEqual(storage.lastIndex(), 0);
    } finally {
      storage.close();
    }
  }));

Deno.test("SqliteStorage.persist() of a snapshot that matches the log keeps the entries after it", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    try {
      storage.persist({
        hardState: { term: 2, vote: 0, commit: 1 },
        entries: [...normals(1, 3, 1), ...normals(4, 6, 2)],
        snapshot: null,
      });
      storage.persist({
        hardState: { term: 2, vote: 0, commit: 4 },
        entries: [],
        snapshot: snapshotAt(4, 2),
      });
      deepStrictEqual([storage.firstIndex(), storage.lastIndex()], [5, 6]);
      deepStrictEqual(storage.entries(5, 7, Infinity), normals(5, 6, 2));
    } finally {
      storage.close();
    }
  }));

Deno.test("SqliteStorage.persist() refuses a hard state whose term or commit index goes back", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    try {
      storage.persist({
        hardState: { term: 2, vote: 0, commit: 2 },
        entries: normals(1, 3, 1),
        snapshot: null,
      });
      throws(
        () =>
          storage.persist({
            hardState: { term: 1, vote: 0, commit: 2 },
            entries: [],
            snapshot: null,
          }),
        /term never decreases/,
      );
      throws(
        () =>
          storage.persist({
            hardState: { term: 2, vote: 0, commit: 1 },
            entries: [],
            snapshot: null,
          }),
        /commit index never decreases/,
      );
      throws(
        () => storage.persist({ hardState: null, entries: normals(4, 4, 3), snapshot: null }),
        /above the current term 2/,
      );
      deepStrictEqual([storage.initialState().hardState, storage.lastIndex()], [{
        term: 2,
        vote: 0,
        commit: 2,
      }, 3]);
    } finally {
      storage.close();
    }
  }));

Deno.test("SqliteStorage.open() reports a file that is not a database", () =>
  withDataDir((dataDir) => {
    Deno.writeFileSync(
      join(dataDir, DATABASE_FILE_NAME),
      new TextEncoder().encode("not sqlite ".repeat(500)),
    );
    assertCorrupt(dataDir, /not an SQLite database or truncated \(file is not a database\)/);
  }));

Deno.test("SqliteStorage.open() reports a file truncated inside its header", () =>
  withDataDir((dataDir) => {
    writeSampleLog(dataDir);
    Deno.truncateSync(join(dataDir, DATABASE_FILE_NAME), 50);
    assertCorrupt(
      dataDir,
      /the SQLite file is damaged or truncated \(database disk image is malformed\)/,
    );
  }));

Deno.test("SqliteStorage.open() reports a file that lost its last pages", () =>
  withDataDir((dataDir) => {
    const storage = SqliteStorage.open(dataDir);
    const big = Array.from(
      { length: 200 },
      (_, i) => ({ type: "normal" as const, index: i + 1, term: 1, data: new Uint8Array(1000) }),
    );
    storage.persist({ hardState: { term: 1, vote: 0, commit: 0 }, entries: big, snapshot: null });
    storage.close();
    const path = join(dataDir, DATABASE_FILE_NAME);
    Deno.truncateSync(path, Math.floor(Deno.statSync(path).size / 2));
    assertCorrupt(dataDir, /damaged or truncated|quick_check reports/);
  }));

Deno.test("SqliteStorage.open() reports an SQLite file that is not Blixard's", () =>
  withDataDir((dataDir) => {
    tamper(dataDir, "CREATE TABLE photos (id INTEGER PRIMARY KEY)");
    assertCorrupt(dataDir, /an SQLite database without Blixard's meta table/);
  }));

Deno.test("SqliteStorage.open() reports an unknown schema version", () =>
  withDataDir((dataDir) => {
    writeSampleLog(dataDir);
    tamper(dataDir, "UPDATE meta SET value = 99 WHERE name = 'schema_version'");
    assertCorrupt(dataDir, /schema version 99 is unknown to this build \(it reads 1\)/);
  }));

const invariantCases: [string, string, RegExp][] = [
  [
    "a gap in the log",
    "DELETE FROM raft_log WHERE log_index = 6",
    /not contiguous from snapshot index 3 \+ 1 \(5 entries between 4 and 9\)/,
  ],
  [
    "a log that does not start after the snapshot",
    "DELETE FROM raft_log WHERE log_index = 4",
    /not contiguous from snapshot index 3/,
  ],
  [
    "terms that decrease",
    "UPDATE raft_log SET term = 1 WHERE log_index = 8",
    /log terms decrease: an entry of term 1 at index 8 follows term 2 from index 5/,
  ],
  [
    "a term that dips inside another term's entries",
    "UPDATE raft_log SET term = 1 WHERE log_index = 6",
    /log terms decrease: an entry of term 1 at index 6 follows term 2 from index 5/,
  ],
  [
    "an entry older than the snapshot's term",
    "UPDATE raft_snapshot SET term = 2",
    /log terms decrease at index 4 \(term 1 after 2\)/,
  ],
  [
    "an entry term above the current term",
    "UPDATE hard_state SET term = 2",
    /log term 3 is above the current term 2/,
  ],
  [
    "a commit index beyond the last index",
    "UPDATE hard_state SET commit_index = 10",
    /commit index 10 is beyond the last log index 9/,
  ],
  [
    "a commit index below the snapshot index",
    "UPDATE hard_state SET commit_index = 2",
    /commit index 2 is below the snapshot index 3/,
  ],
  ["a missing hard state", "DELETE FROM hard_state", /the hard_state row is missing/],
  [
    "a snapshot configuration that is not one",
    "UPDATE raft_snapshot SET conf_state = '{\"voters\":[0]}'",
    /snapshot conf_state .* is not a configuration/,
  ],
  [
    "a membership entry of unknown kind",
    "UPDATE raft_log SET kind = 7 WHERE log_index = 5",
    /bad membership entry: log entry 5 has unknown kind 7/,
  ],
  [
    "a membership entry that cannot apply",
    "UPDATE raft_log SET kind = 2, node_id = 9 WHERE log_index = 5",
    /bad membership entry: .*node 9 is not a learner/,
  ],
];

for (const [what, sql, message] of invariantCases) {
  Deno.test(`SqliteStorage.open() reports ${what}`, () =>
    withDataDir((dataDir) => {
      writeSampleLog(dataDir);
      tamper(dataDir, sql);
      assertCorrupt(dataDir, message);
    }));
}

/** One step of the random workload: append at a position, advance commit, compact, restart. */
type Operation =
  | { type: "append"; back: number; count: number; termStep: number }
  | { type: "commit"; forward: number }
  | { type: "compact"; back: number }
  | { type: "restart" };

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    type: fc.constant("append" as const),
    back: fc.nat(4),
    count: fc.integer({ min: 1, max: 6 }),
    termStep: fc.nat(2),
  }),
  fc.record({ type: fc.constant("commit" as const), forward: fc.nat(5) }),
  fc.record({ type: fc.constant("compact" as const), back: fc.nat(3) }),
  fc.record({ type: fc.constant("restart" as const) }),
);

function applyOperation(storage: DurableStorage, operation: Operation): void {
  const { hardState } = storage.initialState();
  const last = storage.lastIndex();
  if (operation.type === "append") {
    // Overwrite at most the uncommitted suffix, as a follower does when its leader changes.
    const first = Math.max(hardState.commit + 1, last + 1 - operation.back, storage.firstIndex());
    const term = Math.max(storage.term(first - 1) ?? 0, hardState.term) + operation.termStep;
    storage.persist({
      hardState: { ...hardState, term },
      entries: normals(first, first + operation.count - 1, term),
      snapshot: null,
    });
  } else if (operation.type === "commit") {
    const commit = Math.min(last, hardState.commit + operation.forward);
    storage.persist({ hardState: { ...hardState, commit }, entries: [], snapshot: null });
  } else if (operation.type === "compact") {
    const index = hardState.commit - operation.back;
    if (index >= storage.firstIndex()) storage.compact(snapshotAt(index, storage.term(index)!));
  }
}

Deno.test("SqliteStorage answers like MemoryStorage over random appends, commits, compactions and restarts", () =>
  withDataDir((dataDir) => {
    let run = 0;
    fc.assert(
      fc.property(fc.array(operationArbitrary, { maxLength: 30 }), (operations) => {
        const runDir = join(dataDir, String(run++));
        let sqlite = SqliteStorage.open(runDir);
        let memory = new MemoryStorage();
        try {
          for (const operation of operations) {
            if (operation.type === "restart") {
              sqlite.close();
              sqlite = SqliteStorage.open(runDir);
              memory = MemoryStorage.fromDurableImage(memory.durableImage());
            }
            applyOperation(sqlite, operation);
            applyOperation(memory, operation);
          }
          deepStrictEqual(sqlite.initialState(), memory.initialState());
          deepStrictEqual([sqlite.firstIndex(), sqlite.lastIndex()], [
            memory.firstIndex(),
            memory.lastIndex(),
          ]);
          for (let index = 0; index <= memory.lastIndex() + 1; index += 1) {
            strictEqual(sqlite.term(index), memory.term(index), `term(${index})`);
          }
          if (memory.lastIndex() >= memory.firstIndex()) {
            const high = memory.lastIndex() + 1;
            deepStrictEqual(
              sqlite.entries(memory.firstIndex(), high, 100),
              memory.entries(memory.firstIndex(), high, 100),
            );
          }
          deepStrictEqual(sqlite.snapshot(), memory.snapshot());
        } finally {
          sqlite.close();
        }
      }),
      { numRuns: 40, seed: 20261129 },
    );
  }));

/**
 * A child process that appends one entry per persist to `dataDir` and prints each index
 * once `persist` has returned (the point where a node would send messages).
 */
const APPENDING_CHILD = `
  const { SqliteStorage } = await import(${
  JSON.stringify(new URL("./sqlite_storage.ts", import.meta.url).href)
});
  const storage = SqliteStorage.open(Deno.args[0]);
  const encoder = new TextEncoder();
  for (let index = storage.lastIndex() + 1; ; index += 1) {
    const entry = { type: "normal", term: 1, index, data: encoder.encode("entry " + index) };
    storage.persist({ hardState: { term: 1, vote: 1, commit: index - 1 }, entries: [entry], snapshot: null });
    await Deno.stdout.write(encoder.encode(index + "\\n"));
  }
`;

/** Runs the appending child until it acknowledged `acknowledgedMin` more entries, then kills it with SIGKILL. */
async function appendUntilKilled(dataDir: string, acknowledgedMin: number): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", APPENDING_CHILD, dataDir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let lastAcknowledged = 0;
  let seen = 0;
  try {
    const lines = child.stdout.pipeThrough(new TextDecoderStream());
    let buffered = "";
    for await (const chunk of lines) {
      buffered += chunk;
      const complete = buffered.split("\n");
      buffered = complete.pop()!;
      for (const line of complete) lastAcknowledged = Number(line);
      seen += complete.length;
      if (seen >= acknowledgedMin) break;
    }
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  ok(seen >= acknowledgedMin, `the child acknowledged only ${seen} entries`);
  return lastAcknowledged;
}

Deno.test("SqliteStorage keeps every acknowledged entry when its process is killed mid-append", async () => {
  await withDataDir(async (dataDir) => {
    for (let round = 0; round < 3; round += 1) {
      const lastAcknowledged = await appendUntilKilled(dataDir, 50);
      const storage = SqliteStorage.open(dataDir);
      try {
        ok(
          storage.lastIndex() >= lastAcknowledged,
          `last index ${storage.lastIndex()} < acknowledged ${lastAcknowledged}`,
        );
        const entries = storage.entries(1, storage.lastIndex() + 1, Infinity);
        entries.forEach((entry, i) => {
          deepStrictEqual(entry, {
            type: "normal",
            term: 1,
            index: i + 1,
            data: new TextEncoder().encode(`entry ${i + 1}`),
          });
        });
      } finally {
        storage.close();
      }
    }
  });
});
