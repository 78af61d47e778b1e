import assert from "node:assert/strict";
import { EventQueue } from "./event_queue.ts";
import { SimRandom } from "./sim_random.ts";

function drain<T>(queue: EventQueue<T>, now: number): T[] {
  const items: T[] = [];
  for (let item = queue.popDue(now); item !== undefined; item = queue.popDue(now)) items.push(item);
  return items;
}

Deno.test("EventQueue.popDue() yields items in time order, ties in scheduling order", () => {
  const queue = new EventQueue<string>(100);
  queue.push(5, "c");
  queue.push(1, "a");
  queue.push(5, "d");
  queue.push(3, "b");
  assert.deepEqual(drain(queue, 2), ["a"]);
  assert.deepEqual(drain(queue, 10), ["b", "c", "d"]);
  assert.equal(queue.size, 0);
});

Deno.test("EventQueue orders many random times like a stable sort", () => {
  const random = new SimRandom(3);
  const queue = new EventQueue<{ time: number; order: number }>(1000);
  const scheduled = Array.from(
    { length: 500 },
    (_, order) => ({ time: random.integer(0, 50), order }),
  );
  for (const item of scheduled) queue.push(item.time, item);
  const expected = [...scheduled].sort((a, b) => a.time - b.time || a.order - b.order);
  assert.deepEqual(drain(queue, 50), expected);
});

Deno.test("EventQueue refuses items beyond its bound and removes items on request", () => {
  const queue = new EventQueue<number>(3);
  assert.equal(queue.push(1, 1), true);
  assert.equal(queue.push(2, 2), true);
  assert.equal(queue.push(3, 3), true);
  assert.equal(queue.push(4, 4), false);
  assert.equal(queue.removeWhere((item) => item === 2), 1);
  assert.deepEqual(drain(queue, 10), [1, 3]);
});
