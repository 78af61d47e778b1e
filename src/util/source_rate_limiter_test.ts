import assert from "node:assert/strict";
import { SourceRateLimiter } from "./source_rate_limiter.ts";

function limiterWithClock(options: { sourcesMax?: number; globalBurst?: number } = {}) {
  const clock = { nowMs: 1000 };
  const limiter = new SourceRateLimiter({
    perSource: { burst: 3, perSecond: 1 },
    global: { burst: options.globalBurst ?? 100, perSecond: 10 },
    sourcesMax: options.sourcesMax ?? 16,
    now: () => clock.nowMs,
  });
  return { limiter, clock };
}

function takeAll(limiter: SourceRateLimiter, source: string, count: number): number {
  let allowed = 0;
  for (let index = 0; index < count; index++) if (limiter.tryTake(source).allowed) allowed++;
  return allowed;
}

Deno.test("SourceRateLimiter: a flooding source empties its own bucket, not another's", () => {
  const { limiter } = limiterWithClock();
  assert.equal(takeAll(limiter, "127.0.0.2", 1000), 3);
  assert.equal(takeAll(limiter, "127.0.0.1", 3), 3);
});

Deno.test("SourceRateLimiter: the global bucket refuses once many sources together exceed it", () => {
  const { limiter } = limiterWithClock({ globalBurst: 5 });
  assert.equal(takeAll(limiter, "10.0.0.1", 3), 3);
  assert.equal(takeAll(limiter, "10.0.0.2", 3), 2);
  assert.equal(limiter.tryTake("10.0.0.3").allowed, false);
});

Deno.test("SourceRateLimiter: refusals by a source's bucket take nothing from the global one", () => {
  const { limiter } = limiterWithClock({ globalBurst: 4 });
  assert.equal(takeAll(limiter, "10.0.0.1", 100), 3);
  assert.equal(limiter.tryTake("10.0.0.2").allowed, true);
});

Deno.test("SourceRateLimiter: a source's bucket refills at its rate", () => {
  const { limiter, clock } = limiterWithClock();
  assert.equal(takeAll(limiter, "a", 10), 3);
  clock.nowMs += 1000;
  assert.equal(takeAll(limiter, "a", 10), 1);
});

Deno.test("SourceRateLimiter keeps at most sourcesMax sources, forgetting the least recently seen", () => {
  const { limiter } = limiterWithClock({ sourcesMax: 2 });
  assert.equal(takeAll(limiter, "a", 3), 3);
  assert.equal(takeAll(limiter, "b", 1), 1);
  assert.equal(limiter.tryTake("a").allowed, false, "a is seen again, so b is the oldest");
  assert.equal(takeAll(limiter, "c", 1), 1);
  assert.equal(limiter.size, 2);
  assert.equal(limiter.tryTake("a").allowed, false, "a was kept");
  assert.equal(takeAll(limiter, "b", 3), 3, "b was forgotten and starts full");
});
