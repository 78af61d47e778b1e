import assert from "node:assert/strict";
import { closesHeld, holdWhileClosing, NativeCalls, releaseClose } from "./native_calls.ts";
import { bindLoopbackEndpoint, echo, peerAddressOf } from "./testing.ts";

Deno.test("NativeCalls passes results and rejections through and forgets each call once it settles", async () => {
  const calls = new NativeCalls();
  const resolved = calls.track(Promise.resolve(7));
  const rejected = calls.track(Promise.reject(new Error("reset")));
  assert.equal(calls.running, 2);
  assert.equal(await resolved, 7);
  await assert.rejects(rejected, /reset/);
  assert.equal(calls.running, 0);
});

Deno.test("NativeCalls.settled() waits for calls tracked while it waits, and gives up at its bound", async () => {
  const calls = new NativeCalls();
  const first = Promise.withResolvers<void>();
  const second = Promise.withResolvers<void>();
  calls.track(first.promise);
  const settled = calls.settled(10_000);
  // Tracked after settled() began: it must wait for this one too.
  calls.track(second.promise);
  first.resolve();
  await first.promise;
  assert.equal(calls.running, 1);
  second.resolve();
  assert.equal(await settled, true);
  assert.equal(calls.running, 0);

  calls.track(new Promise(() => {}));
  assert.equal(await calls.settled(20), false);
  assert.equal(calls.running, 1);
});

Deno.test("P2pEndpoint.close() returns only after the binding calls of its streams, even fire-and-forget resets, have settled", async () => {
  const alpn = "blixard/test/1";
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    server.handle(alpn, echo);
    const connection = await client.connect(peerAddressOf(server), alpn, { timeoutMs: 10_000 });
    const idle = client.nativeCallsRunning();
    for (let index = 0; index < 3; index++) {
      const stream = await connection.openStream();
      await stream.send(index);
      await stream.receive();
      stream.reset(0);
    }
    // Each reset left a native reset and stop running, which nobody awaits.
    assert.ok(client.nativeCallsRunning() >= idle + 2, `${client.nativeCallsRunning()} running`);
  } finally {
    await client.close();
    await server.close();
  }
  assert.equal(client.nativeCallsRunning(), 0);
  assert.equal(server.nativeCallsRunning(), 0);
});

Deno.test("P2pEndpoint.close() waits for a binding call that is still running after Iroh has closed", async () => {
  const calls = new NativeCalls();
  const endpoint = await bindLoopbackEndpoint({ nativeCalls: calls });
  // Stands for a reset or a read the binding is still running: it settles only later.
  const late = Promise.withResolvers<void>();
  calls.track(late.promise);
  let closed = false;
  const closing = endpoint.close().then(() => closed = true);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(closed, false, "close() resolved while a binding call was running");
  late.resolve();
  await closing;
  assert.equal(calls.running, 0);
});

Deno.test("an endpoint's close is held until it settles, and the unload event waits until the binding reports it closed", async () => {
  const closing = Promise.withResolvers<void>();
  let checks = 0;
  // Reports closed at its third check: the unload listener must keep checking until then.
  const native = { isClosed: () => ++checks >= 3 };
  const held = holdWhileClosing(native, "the test endpoint", closing.promise);
  assert.equal(closesHeld(), 1);

  const printed: string[] = [];
  const consoleError = console.error;
  console.error = (line: string) => printed.push(line);
  try {
    globalThis.dispatchEvent(new Event("unload"));
  } finally {
    console.error = consoleError;
  }
  assert.equal(checks, 3, "unload stopped waiting before the endpoint reported closed");
  assert.equal(printed.length, 1);
  assert.match(
    printed[0]!,
    /^blixard: the test endpoint was still closing at exit; .*native_calls_test\.ts/s,
  );

  closing.resolve();
  await held;
  assert.equal(closesHeld(), 0);
});

Deno.test("a released close is not waited for at unload (a process that exits with Deno.exit)", () => {
  let checks = 0;
  const native = { isClosed: () => (checks++, false) };
  holdWhileClosing(native, "the abandoned endpoint", new Promise(() => {}));
  releaseClose(native);
  assert.equal(closesHeld(), 0);
  globalThis.dispatchEvent(new Event("unload"));
  assert.equal(checks, 0);
});
