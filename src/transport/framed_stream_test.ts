import assert from "node:assert/strict";
import { NativeCalls } from "./native_calls.ts";
import { FramedStream } from "./framed_stream.ts";
import type { IrohRecvStream, IrohSendStream } from "./iroh.ts";
import { withStreamPair } from "./testing.ts";
import { TransportError } from "./transport_error.ts";

function isStreamReset(message: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof TransportError && error.code === "stream_reset" && message.test(error.message);
}

Deno.test("FramedStream delivers concurrent send() calls in call order", async () => {
  await withStreamPair(async (local, remote) => {
    const sent = Array.from({ length: 50 }, (_, index) => ({ index }));
    await Promise.all(sent.map((value) => local.send(value)));
    await local.finish();
    const received: unknown[] = [];
    for (let value = await remote.receive(); value !== null; value = await remote.receive()) {
      received.push(value);
    }
    assert.deepStrictEqual(received, sent);
  });
});

Deno.test("FramedStream starts the native write of a send at once when no send is pending", async () => {
  const calls: string[] = [];
  const pending: (() => void)[] = [];
  const send = {
    writeAll: () => {
      calls.push("writeAll");
      return new Promise<void>((resolve) => pending.push(resolve));
    },
    finish: () => {
      calls.push("finish");
      return Promise.resolve();
    },
  } as unknown as IrohSendStream;
  const stream = new FramedStream({ send, recv: {} as IrohRecvStream }, {
    frameBytesMax: 1024,
    description: "test stream",
    nativeCalls: new NativeCalls(),
  });
  const first = stream.send("a");
  const second = stream.send("b");
  // No await in between: the first write is already with the native side, the second waits.
  assert.deepStrictEqual(calls, ["writeAll"]);
  pending.shift()!();
  await first;
  while (pending.length === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepStrictEqual(calls, ["writeAll", "writeAll"]);
  pending.shift()!();
  await second;
  const finished = stream.finish();
  assert.deepStrictEqual(
    calls,
    ["writeAll", "writeAll", "finish"],
    "idle again: the finish starts at once",
  );
  await finished;
});

Deno.test("FramedStream.receive() returns null at the end of the stream, and again after", async () => {
  await withStreamPair(async (local, remote) => {
    await local.sendBatch([1, 2]);
    await local.finish();
    assert.deepStrictEqual([await remote.receive(), await remote.receive()], [1, 2]);
    assert.equal(await remote.receive(), null);
    assert.equal(await remote.receive(), null);
  });
});

Deno.test("FramedStream.receive() rejects with the peer's code when the peer resets", async () => {
  await withStreamPair(async (local, remote) => {
    local.reset(7);
    await assert.rejects(remote.receive(), isStreamReset(/reset by the peer with code 7$/));
  });
});

Deno.test("FramedStream.reset() ends a receive() that is waiting for data, at once", async () => {
  await withStreamPair(async (_local, remote) => {
    const waiting = remote.receive();
    remote.reset(0);
    await assert.rejects(waiting, isStreamReset(/reset by this side with code 0$/));
    await assert.rejects(remote.send("late"), isStreamReset(/this side/));
  });
});

Deno.test("FramedStream.receiveToEnd() returns every frame left, in one read", async () => {
  await withStreamPair(async (local, remote) => {
    await local.sendBatch(["a", { b: 2 }]);
    await local.finish();
    assert.deepStrictEqual(await remote.receiveToEnd(), ["a", { b: 2 }]);
    assert.equal(await remote.receive(), null);
  });
});

Deno.test("FramedStream.receiveToEnd() resets a stream holding more than one frame's bytes", async () => {
  await withStreamPair(async (local, remote) => {
    // Each frame fits the remote's limit of 1000 bytes; together they exceed it.
    const frame = new Uint8Array(600);
    await local.sendBatch([frame, frame]);
    await local.finish();
    await assert.rejects(
      remote.receiveToEnd(),
      (error) => error instanceof TransportError && error.code === "malformed_frame",
    );
  }, { frameBytesMax: 1000 });
});
