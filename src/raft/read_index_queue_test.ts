import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { InvariantViolation } from "../util/assert.ts";
import { ReadIndexQueue } from "./read_index_queue.ts";

Deno.test("ReadIndexQueue.release() waits for a majority of voters to echo the read's context", () => {
  const queue = new ReadIndexQueue(10);
  const context = queue.add({ requestId: 7, from: 1 }, 42);
  strictEqual(queue.awaitedContext, context);
  deepStrictEqual(queue.release([1, 2, 3], 1), []);
  queue.acknowledge(4, context);
  deepStrictEqual(queue.release([1, 2, 3], 1), [], "a non-voter's echo does not count");
  queue.acknowledge(3, context);
  deepStrictEqual(queue.release([1, 2, 3], 1), [{ requestId: 7, from: 1, index: 42, context }]);
  strictEqual(queue.awaitedContext, 0);
});

Deno.test("ReadIndexQueue.release() releases earlier reads with a later round, never later reads early", () => {
  const queue = new ReadIndexQueue(10);
  const first = queue.add({ requestId: 1, from: 1 }, 5);
  const second = queue.add({ requestId: 2, from: 2 }, 6);
  queue.add({ requestId: 3, from: 1 }, 6);
  queue.acknowledge(2, first);
  deepStrictEqual(queue.release([1, 2, 3], 1).map((read) => read.requestId), [1]);
  queue.acknowledge(3, second);
  deepStrictEqual(queue.release([1, 2, 3], 1).map((read) => read.requestId), [2]);
});

Deno.test("ReadIndexQueue is bounded and clear() forgets pending and deferred reads", () => {
  const queue = new ReadIndexQueue(2);
  queue.defer({ requestId: 1, from: 1 });
  queue.add({ requestId: 2, from: 1 }, 3);
  strictEqual(queue.full(), true);
  throws(() => queue.defer({ requestId: 3, from: 1 }), InvariantViolation);
  deepStrictEqual(queue.takeDeferred(), [{ requestId: 1, from: 1 }]);
  queue.clear();
  strictEqual(queue.full(), false);
  deepStrictEqual(queue.release([1], 1), []);
});
