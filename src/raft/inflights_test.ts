import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { InvariantViolation } from "../util/assert.ts";
import { Inflights } from "./inflights.ts";

Deno.test("Inflights is full at its capacity and refuses one more", () => {
  const inflights = new Inflights(3);
  inflights.add(10);
  inflights.add(20);
  strictEqual(inflights.full(), false);
  inflights.add(30);
  strictEqual(inflights.full(), true);
  throws(() => inflights.add(40), InvariantViolation);
});

Deno.test("Inflights.freeLE() frees the acknowledged prefix and slots are reused around the ring", () => {
  const inflights = new Inflights(3);
  inflights.add(10);
  inflights.add(20);
  inflights.add(30);
  inflights.freeLE(25);
  strictEqual(inflights.count, 1);
  inflights.add(40);
  inflights.add(50);
  strictEqual(inflights.full(), true);
  const counts: number[] = [];
  for (const acknowledged of [5, 30, 40, 60]) {
    inflights.freeLE(acknowledged);
    counts.push(inflights.count);
  }
  deepStrictEqual(counts, [3, 2, 1, 0]);
});

Deno.test("Inflights.add() asserts that indexes increase", () => {
  const inflights = new Inflights(4);
  inflights.add(10);
  throws(() => inflights.add(10), InvariantViolation);
});

Deno.test("Inflights.reset() empties the window", () => {
  const inflights = new Inflights(2);
  inflights.add(1);
  inflights.add(2);
  inflights.reset();
  strictEqual(inflights.count, 0);
  inflights.add(1);
  strictEqual(inflights.count, 1);
});

Deno.test("Inflights.freeFirstOne() frees only the oldest message", () => {
  const inflights = new Inflights(3);
  inflights.freeFirstOne();
  inflights.add(10);
  inflights.add(20);
  inflights.freeFirstOne();
  strictEqual(inflights.count, 1);
  inflights.freeLE(15);
  strictEqual(inflights.count, 1, "the message ending at 20 is still in flight");
});
