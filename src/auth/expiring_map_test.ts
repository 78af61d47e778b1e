import assert from "node:assert/strict";
import { ExpiringMap } from "./expiring_map.ts";

function fakeClock() {
  const clock = { nowMs: 1_000, now: () => clock.nowMs };
  return clock;
}

Deno.test("ExpiringMap.get() returns an entry until its time to live has passed", () => {
  const clock = fakeClock();
  const map = new ExpiringMap<string, number>({ entriesMax: 4, ttlMs: 100, now: clock.now });
  map.set("a", 1);
  clock.nowMs += 99;
  assert.equal(map.get("a"), 1);
  clock.nowMs += 1;
  assert.equal(map.get("a"), undefined);
  assert.equal(map.size, 0, "an expired entry is dropped when found");
});

Deno.test("ExpiringMap.set() drops the oldest entry when full, never exceeding entriesMax", () => {
  const clock = fakeClock();
  const map = new ExpiringMap<string, number>({ entriesMax: 3, ttlMs: 1_000, now: clock.now });
  for (const [index, key] of ["a", "b", "c", "d", "e"].entries()) {
    map.set(key, index);
    assert.ok(map.size <= 3);
  }
  assert.deepStrictEqual(["a", "b", "c", "d", "e"].map((key) => map.get(key)), [
    undefined,
    undefined,
    2,
    3,
    4,
  ]);
});

Deno.test("ExpiringMap.set() of a key again renews it and makes it the newest", () => {
  const clock = fakeClock();
  const map = new ExpiringMap<string, number>({ entriesMax: 2, ttlMs: 100, now: clock.now });
  map.set("a", 1);
  map.set("b", 2);
  clock.nowMs += 60;
  map.set("a", 3);
  map.set("c", 4);
  assert.equal(map.get("b"), undefined, "b was the oldest");
  clock.nowMs += 60;
  assert.equal(map.get("a"), 3, "a lives 100 ms from its renewal");
  assert.equal(map.size, 2);
});

Deno.test("ExpiringMap.set() purges expired entries, so they take no room", () => {
  const clock = fakeClock();
  const map = new ExpiringMap<string, number>({ entriesMax: 3, ttlMs: 100, now: clock.now });
  map.set("a", 1);
  map.set("b", 2);
  clock.nowMs += 50;
  map.set("c", 3);
  clock.nowMs += 60;
  map.set("d", 4);
  assert.equal(map.size, 2, "a and b expired and were purged");
  assert.equal(map.get("c"), 3);
});

Deno.test("ExpiringMap.take() returns a live entry once and removes it", () => {
  const clock = fakeClock();
  const map = new ExpiringMap<string, number>({ entriesMax: 2, ttlMs: 100, now: clock.now });
  map.set("a", 1);
  assert.equal(map.take("a"), 1);
  assert.equal(map.take("a"), undefined);
  map.set("b", 2);
  clock.nowMs += 100;
  assert.equal(map.take("b"), undefined, "expired");
  assert.equal(map.size, 0);
});
