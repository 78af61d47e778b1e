import assert from "node:assert/strict";
import { backoffMs } from "./backoff.ts";

Deno.test("backoffMs() doubles per attempt up to the cap, with jitter between half and all of it", () => {
  const options = { initialMs: 100, maxMs: 1000 };
  assert.deepStrictEqual(
    [0, 1, 2, 3, 4, 50].map((attempt) => backoffMs(attempt, { ...options, random: () => 0 })),
    [50, 100, 200, 400, 500, 500],
  );
  assert.equal(backoffMs(2, { ...options, random: () => 0.999 }), 400);
  assert.equal(backoffMs(9, { ...options, random: () => 0.5 }), 750);
});

Deno.test("backoffMs() without random has no jitter, and stays finite for any attempt", () => {
  const options = { initialMs: 10, maxMs: 1000 };
  assert.deepStrictEqual([0, 1, 6, 7, 5000].map((attempt) => backoffMs(attempt, options)), [
    10,
    20,
    640,
    1000,
    1000,
  ]);
});
