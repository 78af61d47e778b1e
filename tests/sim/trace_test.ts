import assert from "node:assert/strict";
import { Trace } from "./trace.ts";

Deno.test("Trace keeps the last events in order and counts all of them", () => {
  const trace = new Trace(3);
  for (let i = 1; i <= 5; i++) trace.record(i * 10, `event ${i}`);
  assert.equal(trace.recorded, 5);
  assert.deepEqual(trace.lines().map((line) => line.trim()), [
    "30  event 3",
    "40  event 4",
    "50  event 5",
  ]);
});

Deno.test("Trace passes every event to its follower, not only the kept ones", () => {
  const followed: string[] = [];
  const trace = new Trace(1, (line) => followed.push(line.trim()));
  trace.record(1, "a");
  trace.record(2, "b");
  assert.deepEqual(followed, ["1  a", "2  b"]);
  assert.deepEqual(trace.lines().map((line) => line.trim()), ["2  b"]);
});

Deno.test("Trace returns fewer lines than its capacity before it wraps", () => {
  const trace = new Trace(10);
  trace.record(1, "only");
  assert.deepEqual(trace.lines().map((line) => line.trim()), ["1  only"]);
  assert.throws(() => new Trace(0), /capacity 0/);
});
