import assert from "node:assert/strict";
import { sleep, withDeadline } from "./deadline.ts";

const never = new Promise<never>(() => {});

Deno.test("withDeadline() resolves with the work's value when it is in time", async () => {
  assert.equal(
    await withDeadline(Promise.resolve(7), { timeoutMs: 1000, onTimeout: () => new Error("late") }),
    7,
  );
});

Deno.test("withDeadline() rejects with onTimeout() when the work does not settle", async () => {
  await assert.rejects(
    withDeadline(never, { timeoutMs: 5, onTimeout: () => new RangeError("deadline passed") }),
    { name: "RangeError", message: "deadline passed" },
  );
});

Deno.test("withDeadline() rejects with the abort reason, also when aborted before it starts", async () => {
  const controller = new AbortController();
  const pending = withDeadline(never, {
    timeoutMs: 1000,
    signal: controller.signal,
    onTimeout: () => new Error("late"),
  });
  controller.abort(new Error("caller gave up"));
  await assert.rejects(pending, { message: "caller gave up" });
  await assert.rejects(
    withDeadline(never, {
      timeoutMs: 1000,
      signal: controller.signal,
      onTimeout: () => new Error("late"),
    }),
    { message: "caller gave up" },
  );
});

Deno.test("withDeadline() hands a value that arrives after the deadline to onLate()", async () => {
  let release: (value: string) => void = () => {};
  const work = new Promise<string>((resolve) => release = resolve);
  const late: string[] = [];
  await assert.rejects(
    withDeadline(work, {
      timeoutMs: 1,
      onTimeout: () => new Error("late"),
      onLate: (value) => late.push(value),
    }),
    { message: "late" },
  );
  release("connection");
  await work;
  assert.deepStrictEqual(late, ["connection"]);
});

Deno.test("withDeadline() refuses a deadline that is not a positive whole number of ms", () => {
  for (const timeoutMs of [0, -1, 0.5, Number.NaN, 1e12]) {
    assert.throws(() => withDeadline(never, { timeoutMs, onTimeout: () => new Error("late") }));
  }
});

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
