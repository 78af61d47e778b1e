import assert from "node:assert/strict";
import {
  importTransferKey,
  newTransferKey,
  openFrames,
  sealFrame,
  TransferError,
} from "./backup_transfer.ts";

/**
 * A stream of `bytes`, delivered in pieces of `pieceBytes` (frames split anywhere); with
 * `bytesType`, a byte stream (as an HTTP body is, read with a BYOB reader).
 */
function streamOf(
  bytes: Uint8Array,
  pieceBytes = 7,
  bytesType = false,
): ReadableStream<Uint8Array> {
  let offset = 0;
  const pull = (controller: ReadableStreamDefaultController | ReadableByteStreamController) => {
    if (offset >= bytes.length) {
      controller.close();
      // A byte stream's pending BYOB read ends only when its request is answered.
      if ("byobRequest" in controller) controller.byobRequest?.respond(0);
      return;
    }
    controller.enqueue(bytes.slice(offset, offset + pieceBytes));
    offset += pieceBytes;
  };
  return bytesType
    ? new ReadableStream({ type: "bytes", pull })
    : new ReadableStream<Uint8Array>({ pull });
}

async function sealedStream(key: CryptoKey, chunks: Uint8Array[]): Promise<Uint8Array> {
  const frames = [];
  for (const [i, chunk] of [...chunks, new Uint8Array(0)].entries()) {
    frames.push(await sealFrame(key, i + 1, chunk));
  }
  const out = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.length;
  }
  return out;
}

async function opened(
  key: CryptoKey,
  bytes: Uint8Array,
  pieceBytes = 7,
  bytesType = false,
): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  const stream = streamOf(bytes, pieceBytes, bytesType);
  for await (const chunk of openFrames(stream, key)) chunks.push(chunk);
  return chunks;
}

const CHUNKS = [new Uint8Array([1, 2, 3]), new Uint8Array(100).fill(9)];

Deno.test("openFrames() opens what sealFrame() sealed, split anywhere, from a byte stream too, and ends at the marker", async () => {
  const key = await importTransferKey(newTransferKey());
  const sealed = await sealedStream(key, CHUNKS);
  assert.deepEqual(await opened(key, sealed), CHUNKS);
  for (const pieceBytes of [1, 7, 64, sealed.length]) {
    assert.deepEqual(
      await opened(key, sealed, pieceBytes, true),
      CHUNKS,
      `pieces of ${pieceBytes}`,
    );
  }
  await assert.rejects(
    opened(key, sealed.subarray(0, sealed.length - 3), 7, true),
    /ended inside chunk 3/,
  );
});

Deno.test("openFrames() refuses a cut, altered, reordered or foreign-key stream", async () => {
  const key = await importTransferKey(newTransferKey());
  const good = await sealedStream(key, CHUNKS);
  const firstFrame = 4 + 3 + 16;
  const altered = good.slice();
  altered[10]! ^= 1;
  const reordered = new Uint8Array([
    ...good.subarray(firstFrame, good.length - 20),
    ...good.subarray(0, firstFrame),
    ...good.subarray(good.length - 20),
  ]);
  const other = await importTransferKey(newTransferKey());
  const cases: [string, CryptoKey, Uint8Array, RegExp][] = [
    ["cut before the end marker", key, good.subarray(0, good.length - 20), /ended before chunk 3/],
    ["cut inside a chunk", key, good.subarray(0, 10), /ended inside chunk 1/],
    ["altered", key, altered, /chunk 1 .* does not open/],
    ["reordered", key, reordered, /chunk 1 .* does not open/],
    ["another key", other, good, /chunk 1 .* does not open/],
    ["bytes after the end", key, new Uint8Array([...good, 0]), /goes on after its end marker/],
  ];
  for (const [name, caseKey, bytes, expected] of cases) {
    await assert.rejects(opened(caseKey, bytes), (error: unknown) => {
      assert.ok(error instanceof TransferError, `${name}: ${String(error)}`);
      assert.match(error.message, expected, name);
      return true;
    });
  }
});
