/**
 * A backup file of a synthetic state, written straight from a scratch database (much faster
 * than loading the pairs through Raft): what the backup and join-with-data benchmarks
 * restore a node from.
 *
 * @module
 */

import { writeBackupFile } from "../src/backup/backup_file.ts";
import { IMAGE_CHUNK_BYTES_DEFAULT, imageChunks } from "../src/backup/backup_image.ts";
import { SqliteStateStore, STATE_SCHEMA_VERSION } from "../src/state_machine/sqlite_state_store.ts";
import { SqliteStorage } from "../src/storage/sqlite_storage.ts";

/** Writes a backup of `keys` pairs of `valueBytes` to `path`, as a member at index `keys + 3` would; returns its size. */
export async function writeSyntheticBackup(
  path: string,
  options: { keys: number; valueBytes: number },
): Promise<number> {
  const { keys, valueBytes } = options;
  const dir = Deno.makeTempDirSync({ prefix: "blixard-bench-image-" });
  const storage = SqliteStorage.open(dir, { quickCheck: false });
  try {
    const store = new SqliteStateStore(storage);
    const value = new Uint8Array(valueBytes).fill(0x61);
    const encoder = new TextEncoder();
    const index = keys + 3;
    storage.transaction(() => {
      for (let i = 0; i < keys; i++) {
        store.put(encoder.encode(`key-${String(i).padStart(8, "0")}`), value);
      }
      store.setClusterId(crypto.randomUUID());
      store.setAppliedConfState({ voters: [1], learners: [] });
      store.setAppliedIndex(index);
    });
    const reader = storage.openSnapshotReader();
    try {
      const chunks = async function* () {
        yield* imageChunks(reader, { chunkBytes: IMAGE_CHUNK_BYTES_DEFAULT });
      };
      const written = await writeBackupFile(path, {
        clusterId: store.clusterId()!,
        index,
        term: 2,
        createdAt: new Date().toISOString(),
        nodeId: 1,
        stateSchemaVersion: STATE_SCHEMA_VERSION,
      }, chunks());
      return written.bytes;
    } finally {
      reader.close();
    }
  } finally {
    storage.close();
    Deno.removeSync(dir, { recursive: true });
  }
}
