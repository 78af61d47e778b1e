import assert from "node:assert/strict";
import { imageChunks } from "../backup/backup_image.ts";
import { SqliteStateStore } from "../state_machine/sqlite_state_store.ts";
import { SqliteStorage } from "../storage/sqlite_storage.ts";
import {
  createStaging,
  installStaged,
  stageChunk,
  stagedDigest,
  stagedImage,
} from "./snapshot_staging.ts";
import { chunkDigestOf, imageDigestOf } from "../backup/backup_image.ts";

const encoder = new TextEncoder();

function openStore(): { dir: string; storage: SqliteStorage; store: SqliteStateStore } {
  const dir = Deno.makeTempDirSync({ prefix: "blixard-staging-test-" });
  const storage = SqliteStorage.open(dir);
  return { dir, storage, store: new SqliteStateStore(storage) };
}

function stagingCount(storage: SqliteStorage): number {
  return (storage.database.prepare(
    "SELECT count(*) AS count FROM sqlite_schema WHERE name LIKE 'staging_%'",
  ).get() as { count: number }).count;
}

Deno.test("the switch-over replaces the state tables in the surrounding transaction, or, when it rolls back, leaves state and staging as they were", () => {
  const source = openStore();
  const target = openStore();
  try {
    source.storage.transaction(() => {
      for (let i = 0; i < 300; i++) {
        source.store.put(encoder.encode(`new-${i}`), new Uint8Array(64).fill(i % 256));
      }
      source.store.setAppliedIndex(90);
    });
    target.storage.transaction(() => {
      target.store.put(encoder.encode("old"), encoder.encode("before"));
      target.store.setAppliedIndex(7);
    });
    const reader = source.storage.openSnapshotReader();
    const chunks = [...imageChunks(reader, { chunkBytes: 1024 })];
    reader.close();
    createStaging(target.storage, "image-9");
    chunks.forEach((chunk, i) => stageChunk(target.storage, i + 1, chunk));
    assert.deepEqual(stagedImage(target.storage), { imageId: "image-9", chunks: chunks.length });
    assert.deepEqual(stagedDigest(target.storage), imageDigestOf(chunks.map(chunkDigestOf)));
    assert.throws(
      () => stageChunk(target.storage, 1, chunks[0]!),
      /UNIQUE|constraint/i,
      "a chunk lands once",
    );

    // A Ready whose transaction fails after the switch-over: nothing of it stays.
    assert.throws(() =>
      target.storage.transaction(() => {
        installStaged(target.storage);
        assert.equal(target.store.get(encoder.encode("old")), null);
        throw new Error("the Ready's write failed");
      }), /the Ready's write failed/);
    assert.deepEqual(target.store.get(encoder.encode("old")), encoder.encode("before"));
    assert.equal(target.store.get(encoder.encode("new-1")), null);
    assert.equal(stagedImage(target.storage)?.chunks, chunks.length, "the staging is whole");

    target.storage.transaction(() => installStaged(target.storage));
    assert.equal(target.store.get(encoder.encode("old")), null);
    assert.deepEqual(
      target.store.get(encoder.encode("new-299")),
      new Uint8Array(64).fill(299 % 256),
    );
    assert.equal(target.store.list(new Uint8Array(), { limit: 1000 }).length, 300);
    assert.equal(stagingCount(target.storage), 0, "the staging tables are gone");
    // The renamed table is the state table, key and all: the store writes and reads it.
    target.storage.transaction(() =>
      target.store.put(encoder.encode("new-1"), encoder.encode("x"))
    );
    assert.deepEqual(target.store.get(encoder.encode("new-1")), encoder.encode("x"));
    assert.equal(target.store.list(new Uint8Array(), { limit: 1000 }).length, 300);
  } finally {
    for (const side of [source, target]) {
      side.storage.close();
      Deno.removeSync(side.dir, { recursive: true });
    }
  }
});
