import assert from "node:assert/strict";
import { SimRandom } from "./sim_random.ts";

function draws(seed: number): number[] {
  const random = new SimRandom(seed);
  return Array.from({ length: 20 }, () => random.integer(0, 1_000_000));
}

Deno.test("SimRandom replays the same stream from the same seed and another from another seed", () => {
  assert.deepEqual(draws(7), draws(7));
  assert.notDeepEqual(draws(7), draws(8));
});

Deno.test("SimRandom.integer() stays within its bounds and reaches both ends", () => {
  const random = new SimRandom(1);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const value = random.integer(3, 6);
    assert.ok(value >= 3 && value <= 6, `drew ${value}`);
    seen.add(value);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
});

Deno.test("SimRandom.chance() honours 0 and 1 and lands near the probability in between", () => {
  const random = new SimRandom(2);
  let hits = 0;
  for (let i = 0; i < 10_000; i++) {
    assert.equal(random.chance(0), false);
    assert.equal(random.chance(1), true);
    if (random.chance(0.25)) hits += 1;
  }
  assert.ok(hits > 2200 && hits < 2800, `hits ${hits}`);
});

Deno.test("SimRandom refuses bad seeds, ranges and empty picks", () => {
  assert.throws(() => new SimRandom(1.5), /not a 32-bit integer/);
  assert.throws(() => new SimRandom(1).integer(5, 4), /not a range/);
  assert.throws(() => new SimRandom(1).pick([]), /no items/);
  assert.throws(() => new SimRandom(1).chance(2), /outside \[0, 1\]/);
});
