import assert from "node:assert/strict";
import { LogRateLimiter } from "./log_rate_limiter.ts";

Deno.test("LogRateLimiter writes a burst, suppresses and counts the rest, then says how many it suppressed", () => {
  const clock = { nowMs: 0 };
  let reported = 0;
  const limiter = new LogRateLimiter({
    limit: { burst: 2, perSecond: 1 },
    onSuppressed: () => reported++,
    now: () => clock.nowMs,
  });
  const written: number[] = [];
  for (let index = 0; index < 10; index++) limiter.write((suppressed) => written.push(suppressed));
  assert.deepEqual(written, [0, 0]);
  assert.equal(limiter.suppressedTotal, 8);
  assert.equal(reported, 8);
  clock.nowMs += 1000;
  limiter.write((suppressed) => written.push(suppressed));
  assert.deepEqual(written, [0, 0, 8], "the next line written names the 8 suppressed before it");
  limiter.write((suppressed) => written.push(suppressed));
  assert.equal(limiter.suppressedTotal, 9);
});
