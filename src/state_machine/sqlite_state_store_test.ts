import { deepStrictEqual, match, ok, strictEqual, throws } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { DATABASE_FILE_NAME, SqliteStorage } from "../storage/sqlite_storage.ts";
import { StorageCorruptionError } from "../storage/storage.ts";
import { encodeCommand } from "./commands.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import { SqliteStateStore } from "./sqlite_state_store.ts";
import { withSqliteStore } from "./store_fixtures.ts";

const text = (value: string) => new TextEncoder().encode(value);

function putEntry(index: number, key: string, value: string) {
  return {
    type: "normal" as const,
    term: 1,
    index,
    data: encodeCommand({ type: "put", key: text(key), value: text(value) }),
  };
}

/** A closed data dir whose storage committed entries 1..3 and whose state machine applied 1..2. */
function writeAppliedState(dataDir: string): void {
  const storage = SqliteStorage.open(dataDir);
  const machine = new KvStateMachine(new SqliteStateStore(storage));
  const entries = [putEntry(1, "a", "1"), putEntry(2, "b", "2"), putEntry(3, "c", "3")];
  storage.transaction(() => {
    storage.persist({ hardState: { term: 1, vote: 1, commit: 3 }, entries, snapshot: null });
    machine.apply(entries[0]!);
    machine.apply(entries[1]!);
  });
  storage.close();
}

function withDataDir(body: (dataDir: string) => void): void {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-state-" });
  try {
    body(dataDir);
  } finally {
    Deno.removeSync(dataDir, { recursive: true });
  }
}

function tamper(dataDir: string, sql: string): void {
  const database = new DatabaseSync(join(dataDir, DATABASE_FILE_NAME));
  database.exec(sql);
  database.close();
}

function assertCorrupt(dataDir: string, what: RegExp): void {
  const storage = SqliteStorage.open(dataDir);
  try {
    throws(() => new SqliteStateStore(storage), (error: unknown) => {
      ok(error instanceof StorageCorruptionError, String(error));
      match(error.message, what);
      match(error.message, /restore .* from a backup, or remove it and re-join the cluster$/);
      return true;
    });
  } finally {
    storage.close();
  }
}

Deno.test("SqliteStateStore refuses writes outside a transaction (they would fsync on their own)", () =>
  withSqliteStore(({ store }) => {
    throws(() => store.put(text("k"), text("v")), /inside a transaction/);
    throws(() => store.setAppliedIndex(1), /inside a transaction/);
    strictEqual(store.get(text("k")), null);
  }));

Deno.test("SqliteStateStore keeps the applied state across close and reopen", () =>
  withDataDir((dataDir) => {
    writeAppliedState(dataDir);
    const storage = SqliteStorage.open(dataDir);
    try {
      const machine = new KvStateMachine(new SqliteStateStore(storage));
      deepStrictEqual([machine.appliedIndex(), machine.get(text("b")), machine.get(text("c"))], [
        2,
        text("2"),
        null,
      ]);
    } finally {
      storage.close();
    }
  }));

Deno.test("persist and apply in one transaction: a failure leaves neither the entries nor their effects", () =>
  withDataDir((dataDir) => {
    writeAppliedState(dataDir);
    const storage = SqliteStorage.open(dataDir);
    const machine = new KvStateMachine(new SqliteStateStore(storage));
    throws(() =>
      storage.transaction(() => {
        storage.persist({
          hardState: { term: 1, vote: 1, commit: 4 },
          entries: [putEntry(4, "d", "4")],
          snapshot: null,
        });
        machine.apply(putEntry(3, "c", "3"));
        machine.apply(putEntry(4, "d", "4"));
        throw new Error("crash before commit");
      }), /crash before commit/);
    const check = (s: SqliteStorage, m: KvStateMachine) => {
      deepStrictEqual([s.lastIndex(), s.initialState().hardState.commit], [3, 3]);
      deepStrictEqual([m.appliedIndex(), m.get(text("c")), m.get(text("d"))], [2, null, null]);
    };
    check(storage, machine);
    storage.close();
    const reopened = SqliteStorage.open(dataDir);
    check(reopened, new KvStateMachine(new SqliteStateStore(reopened)));
    reopened.close();
  }));

Deno.test("SqliteStateStore reports an applied index beyond the commit index", () =>
  withDataDir((dataDir) => {
    writeAppliedState(dataDir);
    tamper(dataDir, "UPDATE sm_state SET applied_index = 4");
    assertCorrupt(dataDir, /applied index 4 is beyond the commit index 3/);
  }));

Deno.test("SqliteStateStore reports an unknown state machine schema version", () =>
  withDataDir((dataDir) => {
    writeAppliedState(dataDir);
    tamper(dataDir, "UPDATE meta SET value = 5 WHERE name = 'state_schema_version'");
    assertCorrupt(
      dataDir,
      /state machine schema version 5 is unknown to this build \(it reads 1\)/,
    );
  }));

Deno.test("SqliteStateStore reports unreadable member, session and configuration rows", () => {
  const cases: [string, RegExp][] = [
    ["INSERT INTO sm_member (node_id, info) VALUES (1, x'c1')", /sm_member row: member info/],
    [
      "INSERT INTO sm_session VALUES ('c', 1, 1, x'00')",
      /sm_session row of c: stored client result/,
    ],
    ["UPDATE sm_state SET conf_state = 'nope'", /sm_state.conf_state nope is not a configuration/],
    ["DELETE FROM sm_state", /the sm_state row is missing/],
  ];
  for (const [sql, what] of cases) {
    withDataDir((dataDir) => {
      writeAppliedState(dataDir);
      tamper(dataDir, sql);
      assertCorrupt(dataDir, what);
    });
  }
});

Deno.test("SqliteStateStore adds the revoked-key and invited-learner tables to a database written before them, keeping its state", () => {
  withDataDir((dataDir) => {
    writeAppliedState(dataDir);
    const database = new DatabaseSync(join(dataDir, DATABASE_FILE_NAME));
    database.exec("DROP TABLE sm_revoked; DROP TABLE sm_invited_learner");
    database.close();
    const storage = SqliteStorage.open(dataDir);
    try {
      const store = new SqliteStateStore(storage);
      deepStrictEqual(store.revokedKeys(), []);
      strictEqual(store.appliedIndex(), 2);
      deepStrictEqual(store.invitedLearners(), []);
      storage.transaction(() => store.revokeKey({ p2pNodeId: "p2p-2", index: 3 }));
      strictEqual(store.isRevoked("p2p-2"), true);
      storage.transaction(() => store.addInvitedLearner(4));
      deepStrictEqual(store.invitedLearners(), [4]);
    } finally {
      storage.close();
    }
  });
});
