import assert from "node:assert/strict";
import { TokenBucket } from "./token_bucket.ts";

function bucketWithClock(capacity: number, refillPerSecond: number) {
  const clock = { nowMs: 1000 };
  const bucket = new TokenBucket({ capacity, refillPerSecond, now: () => clock.nowMs });
  return { bucket, clock };
}

Deno.test("TokenBucket allows a burst of its capacity, then refuses", () => {
  const { bucket } = bucketWithClock(3, 1);
  for (let index = 0; index < 3; index += 1) assert.deepEqual(bucket.tryTake(), { allowed: true });
  assert.deepEqual(bucket.tryTake(), { allowed: false, retryAfterMs: 1000 });
});

Deno.test("TokenBucket refills at its rate and says how long until the next token", () => {
  const { bucket, clock } = bucketWithClock(1, 4);
  assert.equal(bucket.tryTake().allowed, true);
  clock.nowMs += 100;
  assert.deepEqual(bucket.tryTake(), { allowed: false, retryAfterMs: 150 });
  clock.nowMs += 150;
  assert.deepEqual(bucket.tryTake(), { allowed: true });
});

Deno.test("TokenBucket never holds more than its capacity after a long pause", () => {
  const { bucket, clock } = bucketWithClock(2, 10);
  clock.nowMs += 3_600_000;
  assert.equal(bucket.tryTake().allowed, true);
  assert.equal(bucket.tryTake().allowed, true);
  assert.equal(bucket.tryTake().allowed, false);
});

Deno.test("TokenBucket ignores a clock that steps back", () => {
  const { bucket, clock } = bucketWithClock(1, 1);
  assert.equal(bucket.tryTake().allowed, true);
  clock.nowMs -= 10_000;
  assert.deepEqual(bucket.tryTake(), { allowed: false, retryAfterMs: 1000 });
});

Deno.test("TokenBucket refuses a capacity below one or a rate that is not positive", () => {
  assert.throws(() => new TokenBucket({ capacity: 0, refillPerSecond: 1 }), /capacity/);
  assert.throws(() => new TokenBucket({ capacity: 1.5, refillPerSecond: 1 }), /capacity/);
  assert.throws(() => new TokenBucket({ capacity: 1, refillPerSecond: 0 }), /refillPerSecond/);
  assert.throws(
    () => new TokenBucket({ capacity: 1, refillPerSecond: Infinity }),
    /refillPerSecond/,
  );
});
