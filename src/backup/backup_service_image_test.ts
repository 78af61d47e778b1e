import assert from "node:assert/strict";
import { KvStateMachine } from "../state_machine/kv_state_machine.ts";
import { SqliteStateStore } from "../state_machine/sqlite_state_store.ts";
import { SqliteStorage } from "../storage/sqlite_storage.ts";
import { BackupService } from "./backup_service.ts";
import { importTransferKey, openFrames } from "./backup_transfer.ts";

const encoder = new TextEncoder();

/** Reads `count` chunks of `body` (numbered from `first`), then lets the stream go. */
async function take(body: ReadableStream<Uint8Array>, key: CryptoKey, first: number, count = 1e9) {
  const chunks: Uint8Array[] = [];
  const frames = openFrames(body, key, first);
  for await (const chunk of frames) {
    chunks.push(chunk);
    if (chunks.length === count) break;
  }
  return chunks;
}

Deno.test("an image's stream broken after a few chunks is taken again from any chunk already cut, with the same bytes; one being read, or past the cut, is refused", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "blixard-backup-image-service-test-" });
  const storage = SqliteStorage.open(dir);
  try {
    const store = new SqliteStateStore(storage);
    storage.transaction(() => {
      for (let i = 0; i < 200; i++) store.put(encoder.encode(`key-${i}`), new Uint8Array(200));
      store.setAppliedIndex(5);
    });
    const service = new BackupService({
      nodeId: 1,
      storage,
      stateMachine: new KvStateMachine(store),
      raft: { read: (fn) => Promise.resolve(fn()) },
    });
    const ends: boolean[] = [];
    const image = await service.openImage({
      chunkBytes: 1024,
      idleMs: 10_000,
      onEnd: (ok) => ends.push(ok),
    });
    const key = await importTransferKey(image.key);
    const first = service.stream(image.id, 1)!;
    assert.equal(service.imageState(image.id), "streaming");
    assert.equal(service.stream(image.id, 1), null, "one reader at a time");
    const head = await take(first, key, 1, 6);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(service.imageState(image.id), "waiting");
    assert.deepEqual(ends, [false], "the break is reported");
    assert.equal(service.stream(image.id, 0), null);
    assert.equal(service.stream(image.id, 100), null, "not cut that far yet");
    const rest = await take(service.stream(image.id, 4)!, key, 4);
    assert.deepEqual(rest.slice(0, 3), head.slice(3), "chunks 4 to 6 cut again, the same");
    assert.ok(rest.length > 20, `${rest.length} chunks`);
    assert.deepEqual(ends, [false, true]);
    assert.equal(service.imageState(image.id), null, "a finished image is gone");
    assert.equal(service.stream(image.id, 1), null);
    service.close();
  } finally {
    storage.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
