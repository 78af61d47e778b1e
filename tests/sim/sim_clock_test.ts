import assert from "node:assert/strict";
import { MS_PER_UNIT, settleMicrotasks, SimClock } from "./sim_clock.ts";
import { sleepOn } from "../../src/util/sleep.ts";

Deno.test("SimClock fires timers by due time, then by the order they were set, on simulated time only", () => {
  let now = 0;
  const clock = new SimClock(() => now);
  const scheduler = clock.scope();
  const fired: string[] = [];
  scheduler.after(4 * MS_PER_UNIT, () => fired.push("b"));
  scheduler.after(2 * MS_PER_UNIT, () => fired.push("a"));
  scheduler.after(4 * MS_PER_UNIT, () => fired.push("c"));
  const cancel = scheduler.after(3 * MS_PER_UNIT, () => fired.push("cancelled"));
  cancel();
  const stop = scheduler.every(3 * MS_PER_UNIT, () => fired.push(`every@${now}`));
  for (now = 1; now <= 7; now++) clock.runDue();
  stop();
  for (; now <= 12; now++) clock.runDue();
  assert.deepEqual(fired, ["a", "every@3", "b", "c", "every@6"]);
  assert.equal(scheduler.now(), 13 * MS_PER_UNIT);
});

Deno.test("SimClock: a closed scope's timers never fire, so a crashed node's policy stops", () => {
  let now = 0;
  const clock = new SimClock(() => now);
  const crashed = clock.scope();
  const alive = clock.scope();
  const fired: string[] = [];
  crashed.every(MS_PER_UNIT, () => fired.push("crashed"));
  alive.after(2 * MS_PER_UNIT, () => fired.push("alive"));
  crashed.close();
  crashed.after(MS_PER_UNIT, () => fired.push("after close"));
  for (now = 1; now <= 3; now++) clock.runDue();
  assert.deepEqual(fired, ["alive"]);
});

Deno.test("settleMicrotasks() lets a sleep on the simulated clock finish once its timer fired", async () => {
  let now = 0;
  const clock = new SimClock(() => now);
  const scheduler = clock.scope();
  const steps: string[] = [];
  const sleeper = (async () => {
    await sleepOn(scheduler, { durationMs: 5 * MS_PER_UNIT });
    steps.push(`woke at ${now}`);
    await Promise.resolve();
    steps.push("went on");
  })();
  for (now = 1; now <= 6; now++) {
    clock.runDue();
    await settleMicrotasks();
  }
  await sleeper;
  assert.deepEqual(steps, ["woke at 5", "went on"]);
});
