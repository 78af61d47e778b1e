import assert from "node:assert/strict";
import { SqliteStorage } from "../storage/sqlite_storage.ts";
import { SqliteStateStore } from "../state_machine/sqlite_state_store.ts";
import { encodeMessagePack } from "../state_machine/msgpack_codec.ts";
import {
  BackupImageError,
  clearStateTables,
  decodeImageChunk,
  IMAGE_START,
  imageChunks,
  imageChunksFrom,
  importImageChunk,
  stateTables,
} from "./backup_image.ts";

const encoder = new TextEncoder();

function withStorage(fn: (storage: SqliteStorage, store: SqliteStateStore) => void): void {
  const dir = Deno.makeTempDirSync({ prefix: "blixard-backup-image-test-" });
  const storage = SqliteStorage.open(dir);
  try {
    fn(storage, new SqliteStateStore(storage));
  } finally {
    storage.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("imageChunks() exports every sm_ table, a later-added one too, and importImageChunk() loads it back", () => {
  let chunks: Uint8Array[] = [];
  withStorage((storage, store) => {
    storage.transaction(() => {
      for (let i = 0; i < 200; i++) {
        store.put(encoder.encode(`key-${i}`), new Uint8Array(100).fill(i % 256));
      }
      // A table a later change adds to the replicated state.
      storage.database.exec("CREATE TABLE sm_later (p2p_node_id TEXT PRIMARY KEY)");
      storage.database.exec("INSERT INTO sm_later VALUES ('abc')");
      storage.database.exec("CREATE TABLE local_note (text TEXT)");
      storage.database.exec("INSERT INTO local_note VALUES ('not replicated')");
    });
    const reader = storage.openSnapshotReader();
    try {
      chunks = [...imageChunks(reader, { chunkBytes: 1024 })];
    } finally {
      reader.close();
    }
  });
  const tables = chunks.map((chunk) => decodeImageChunk(chunk).table);
  assert.ok(chunks.length >= 20, `${chunks.length} chunks`);
  assert.deepEqual([...new Set(tables)], ["sm_kv", "sm_later", "sm_state"]);
  withStorage((storage, store) => {
    storage.database.exec("CREATE TABLE sm_later (p2p_node_id TEXT PRIMARY KEY)");
    storage.transaction(() => {
      clearStateTables(storage.database);
      for (const chunk of chunks) importImageChunk(storage.database, decodeImageChunk(chunk));
    });
    assert.equal(store.list(new Uint8Array(), { limit: 1000 }).length, 200);
    assert.deepEqual(store.get(encoder.encode("key-7")), new Uint8Array(100).fill(7));
    assert.deepEqual(stateTables(storage.database), [
      "sm_invite",
      "sm_invited_learner",
      "sm_kv",
      "sm_later",
      "sm_member",
      "sm_revoked",
      "sm_session",
      "sm_state",
    ]);
    assert.equal(
      (storage.database.prepare("SELECT count(*) AS n FROM sm_later").get() as { n: number }).n,
      1,
    );
    // A build without that table refuses the image instead of dropping the rows.
    storage.database.exec("DROP TABLE sm_later");
    const later = chunks.map(decodeImageChunk).find((chunk) => chunk.table === "sm_later")!;
    assert.throws(
      () => storage.transaction(() => importImageChunk(storage.database, later)),
      /the backup holds table sm_later, which this build does not have/,
    );
  });
});

Deno.test("decodeImageChunk() refuses what is not [table, columns, rows] of sm_ tables", () => {
  const cases: [unknown, RegExp][] = [
    [{ table: "sm_kv" }, /not \[table, columns, rows\]/],
    [["raft_log", ["log_index"], []], /names the table "raft_log"/],
    [["sm_kv", ["key; DROP"], []], /invalid column names/],
    [["sm_kv", ["key", "value"], [[new Uint8Array(1)]]], /does not match its columns/],
    [["sm_kv", ["key", "value"], [[new Uint8Array(1), { a: 1 }]]], /does not match its columns/],
  ];
  for (const [value, expected] of cases) {
    assert.throws(() => decodeImageChunk(encodeMessagePack(value)), (error: unknown) => {
      assert.ok(error instanceof BackupImageError);
      assert.match(error.message, expected);
      return true;
    });
  }
  assert.throws(() => decodeImageChunk(new Uint8Array([0x92, 0xa1])), /not MessagePack/);
});

Deno.test("imageChunksFrom() cuts the same chunks again from any chunk's start cursor, in tables keyed by a primary key, a compound key and a rowid", () => {
  withStorage((storage, store) => {
    storage.transaction(() => {
      for (let i = 0; i < 150; i++) {
        store.put(encoder.encode(`key-${i}`), new Uint8Array(40 + (i % 7) * 30).fill(i % 256));
      }
      storage.database.exec(
        "CREATE TABLE sm_pair (a TEXT NOT NULL, b INTEGER NOT NULL, v BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID",
      );
      storage.database.exec("CREATE TABLE sm_plain (note TEXT)");
      for (let i = 0; i < 60; i++) {
        storage.database.prepare("INSERT INTO sm_pair VALUES (?, ?, ?)").run(
          `a-${i % 5}`,
          i,
          new Uint8Array(50),
        );
        storage.database.prepare("INSERT INTO sm_plain VALUES (?)").run(`note ${i}`.repeat(5));
      }
    });
    const reader = storage.openSnapshotReader();
    try {
      const all = [...imageChunksFrom(reader, { chunkBytes: 700, from: IMAGE_START })];
      assert.ok(all.length > 20, `${all.length} chunks`);
      assert.deepEqual(
        [...new Set(all.map(({ chunk }) => decodeImageChunk(chunk).table))],
        ["sm_kv", "sm_pair", "sm_plain", "sm_state"],
      );
      const rows = all.reduce((sum, { chunk }) => sum + decodeImageChunk(chunk).rows.length, 0);
      assert.equal(rows, 150 + 60 + 60 + 1, "every row once");
      for (let n = 1; n < all.length; n++) {
        const again = [...imageChunksFrom(reader, { chunkBytes: 700, from: all[n - 1]!.next })];
        assert.deepEqual(
          again.map(({ chunk }) => chunk),
          all.slice(n).map(({ chunk }) => chunk),
          `from chunk ${n + 1}`,
        );
      }
      assert.deepEqual(
        [...imageChunksFrom(reader, { chunkBytes: 700, from: all.at(-1)!.next })],
        [],
      );
    } finally {
      reader.close();
    }
  });
});
