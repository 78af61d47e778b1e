import assert from "node:assert/strict";
import { sleep } from "./sleep.ts";

Deno.test("sleep() resolves after its time and leaves no listener on a long-lived signal", async () => {
  const controller = new AbortController();
  let listeners = 0;
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listeners++;
    add(...args);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    listeners--;
    remove(...args);
  }) as typeof signal.removeEventListener;
  for (let i = 0; i < 3; i++) await sleep(1, signal);
  assert.equal(listeners, 0);
});

Deno.test("sleep() rejects with the abort reason as soon as its signal aborts", async () => {
  const controller = new AbortController();
  const sleeping = sleep(60_000, controller.signal);
  controller.abort(new Error("stopping"));
  await assert.rejects(sleeping, /stopping/);
  await assert.rejects(
    sleep(1, controller.signal),
    /stopping/,
    "an aborted signal rejects at once",
  );
});
