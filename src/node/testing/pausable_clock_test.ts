import assert from "node:assert/strict";
import { timeoutSignal } from "../../util/scheduler.ts";
import { sleepOn } from "../../util/sleep.ts";
import { PausableClock } from "./pausable_clock.ts";

/** Lets the promise callbacks that the clock's work set off run. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

Deno.test("PausableClock.after() runs once when paused time reaches its delay, and never once cancelled", async () => {
  const clock = new PausableClock();
  clock.pause();
  const ran: string[] = [];
  clock.after(100, () => ran.push("due"));
  const cancel = clock.after(50, () => ran.push("cancelled"));
  cancel();
  await clock.advance(99, settle);
  assert.deepEqual(ran, []);
  await clock.advance(1, settle);
  assert.deepEqual(ran, ["due"]);
  await clock.advance(1_000, settle);
  assert.deepEqual(ran, ["due"], "a timeout runs once");
});

Deno.test("sleepOn() resolves on its clock's time, and rejects at once when its signal aborts", async () => {
  const clock = new PausableClock();
  clock.pause();
  let woke = false;
  const sleeping = sleepOn(clock, { durationMs: 10_000 }).then(() => woke = true);
  await clock.advance(9_999, settle);
  assert.equal(woke, false);
  await clock.advance(1, settle);
  await sleeping;
  assert.equal(woke, true);
  const abort = new AbortController();
  const aborted = sleepOn(clock, { durationMs: 10_000, signal: abort.signal });
  abort.abort(new Error("stopping"));
  await assert.rejects(aborted, /stopping/);
  await clock.advance(20_000, settle);
});

Deno.test("timeoutSignal() aborts when its clock passes the delay, and not once cancelled", async () => {
  const clock = new PausableClock();
  clock.pause();
  const timed = timeoutSignal(clock, 500);
  const cancelled = timeoutSignal(clock, 500);
  cancelled.cancel();
  await clock.advance(499, settle);
  assert.equal(timed.signal.aborted, false);
  await clock.advance(1, settle);
  assert.equal(timed.signal.aborted, true);
  assert.equal((timed.signal.reason as DOMException).name, "TimeoutError");
  assert.equal(cancelled.signal.aborted, false);
});
