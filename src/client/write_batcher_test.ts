import assert from "node:assert/strict";
import { type PutItem, type PutItemResult, WriteBatcher } from "./write_batcher.ts";

const item = (n: number, valueBytes = 1): PutItem => ({
  key: new Uint8Array([n]),
  value: new Uint8Array(valueBytes),
  request: { clientId: `client-${n}`, sequence: 1 },
});

function recordingSender(answer: (items: PutItem[]) => PutItemResult[] | Error) {
  const batches: PutItem[][] = [];
  const send = (items: PutItem[]) => {
    batches.push(items);
    const result = answer(items);
    return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
  };
  return { batches, send };
}

Deno.test("WriteBatcher sends the puts of one turn together and gives each its own result", async () => {
  const { batches, send } = recordingSender((items) =>
    items.map((put) =>
      put.key[0] === 2 ? { error: { code: "invalid", message: "no" } } : { index: put.key[0]! * 10 }
    )
  );
  const batcher = new WriteBatcher(send, { itemsMax: 100, bytesMax: 1000 });
  const results = await Promise.all(
    [1, 2, 3].map((n) => batcher.submit(item(n), { timeoutMs: 1000 })),
  );
  assert.equal(batches.length, 1, "one call for the three puts");
  assert.deepEqual(results, [{ index: 10 }, { error: { code: "invalid", message: "no" } }, {
    index: 30,
  }]);
  const later = await batcher.submit(item(4), { timeoutMs: 1000 });
  assert.deepEqual(later, { index: 40 });
  assert.equal(batches.length, 2, "a put of a later turn goes in a new call");
});

Deno.test("WriteBatcher splits a turn's puts at the item and byte limits, keeping their order", async () => {
  const { batches, send } = recordingSender((items) =>
    items.map((put) => ({ index: put.key[0]! }))
  );
  const batcher = new WriteBatcher(send, { itemsMax: 2, bytesMax: 100 });
  const sizes = [10, 10, 10, 95, 200, 1];
  const results = await Promise.all(
    sizes.map((size, n) => batcher.submit(item(n, size), { timeoutMs: 1000 })),
  );
  assert.deepEqual(results.map((result) => (result as { index: number }).index), [
    0,
    1,
    2,
    3,
    4,
    5,
  ]);
  assert.deepEqual(batches.map((batch) => batch.map((put) => put.key[0])), [[0, 1], [2], [3], [4], [
    5,
  ]]);
});

Deno.test("WriteBatcher rejects every put of a call that fails as a whole", async () => {
  const { send } = recordingSender(() => new Error("connection lost"));
  const batcher = new WriteBatcher(send, { itemsMax: 10, bytesMax: 1000 });
  const outcomes = await Promise.allSettled(
    [1, 2].map((n) => batcher.submit(item(n), { timeoutMs: 1000 })),
  );
  assert.deepEqual(outcomes.map((outcome) => outcome.status), ["rejected", "rejected"]);
});

Deno.test("WriteBatcher rejects the puts a short answer leaves without a result", async () => {
  const { send } = recordingSender(() => [{ index: 1 }]);
  const batcher = new WriteBatcher(send, { itemsMax: 10, bytesMax: 1000 });
  const outcomes = await Promise.allSettled(
    [1, 2].map((n) => batcher.submit(item(n), { timeoutMs: 1000 })),
  );
  assert.equal(outcomes[0]!.status, "fulfilled");
  assert.equal(outcomes[1]!.status, "rejected");
});
