import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { DATABASE_FILE_NAME, SqliteStorage } from "../../storage/sqlite_storage.ts";
import { EarlyStorage } from "./early_storage.ts";

/** Runs `body` with a fresh data dir, removed afterwards. */
function withDataDir(body: (dataDir: string) => void): void {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-early-storage-" });
  try {
    body(dataDir);
  } finally {
    Deno.removeSync(dataDir, { recursive: true });
  }
}

/** What a join killed -9 before its first entries leaves: a database with no Raft state. */
function leavePristineDatabase(dataDir: string): void {
  SqliteStorage.open(dataDir).close();
}

Deno.test("EarlyStorage: an empty data dir held no Raft state, and asking creates no database", () =>
  withDataDir((dataDir) => {
    const early = new EarlyStorage(dataDir);
    assert.equal(early.heldRaftState(), false);
    assert.equal(existsSync(`${dataDir}/${DATABASE_FILE_NAME}`), false);
    assert.equal(early.handOver(), null);
  }));

Deno.test("EarlyStorage: a database a killed join left without Raft state counts as none, and is handed over open", () =>
  withDataDir((dataDir) => {
    leavePristineDatabase(dataDir);
    const early = new EarlyStorage(dataDir);
    assert.equal(early.heldRaftState(), false);
    const storage = early.handOver();
    assert.ok(storage !== null, "the database the question opened is handed over");
    storage.close();
  }));

Deno.test("EarlyStorage: a database with a term held Raft state, and the answer stays once the start writes", () =>
  withDataDir((dataDir) => {
    const written = SqliteStorage.open(dataDir);
    written.persist({ hardState: { term: 2, vote: 1, commit: 0 }, entries: [], snapshot: null });
    written.close();
    const early = new EarlyStorage(dataDir);
    assert.equal(early.heldRaftState(), true);
    early.abandon();
    assert.ok(existsSync(`${dataDir}/${DATABASE_FILE_NAME}`), "Raft state is never removed");

    const fresh = Deno.makeTempDirSync({ prefix: "blixard-early-storage-" });
    try {
      const first = new EarlyStorage(fresh);
      assert.equal(first.heldRaftState(), false);
      first.open();
      const storage = first.handOver()!;
      storage.persist({ hardState: { term: 1, vote: 1, commit: 0 }, entries: [], snapshot: null });
      assert.equal(first.heldRaftState(), false, "the answer is the one from the start");
      storage.close();
    } finally {
      Deno.removeSync(fresh, { recursive: true });
    }
  }));

Deno.test("EarlyStorage.abandon() removes a database it opened that holds no Raft state", () =>
  withDataDir((dataDir) => {
    leavePristineDatabase(dataDir);
    const early = new EarlyStorage(dataDir);
    assert.equal(early.heldRaftState(), false);
    early.abandon();
    assert.equal(existsSync(`${dataDir}/${DATABASE_FILE_NAME}`), false);
  }));
