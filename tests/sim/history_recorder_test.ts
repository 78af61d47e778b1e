import assert from "node:assert/strict";
import { HistoryRecorder } from "./history_recorder.ts";
import { checkLinearizability } from "./linearizability.ts";

Deno.test("HistoryRecorder keeps completed and pending operations and leaves out discarded ones", () => {
  const recorder = new HistoryRecorder(10);
  const put = recorder.invoke(1, { type: "put", key: "k", value: "a" }, 0);
  const refused = recorder.invoke(2, { type: "put", key: "k", value: "b" }, 1);
  const pending = recorder.invoke(3, { type: "delete", key: "k" }, 2);
  recorder.complete(put, { type: "ok" }, 5);
  recorder.discard(refused);
  const history = recorder.history();
  assert.deepEqual(history.map((operation) => operation.id), [put, pending]);
  assert.deepEqual(history[0], {
    id: put,
    clientId: 1,
    input: { type: "put", key: "k", value: "a" },
    output: { type: "ok" },
    invokeTime: 0,
    returnTime: 5,
  });
  assert.equal(history[1]?.output, null);
  assert.equal(history[1]?.returnTime, Infinity);
  assert.deepEqual(recorder.counts(), { pending: 1, completed: 1, discarded: 1 });
});

Deno.test("HistoryRecorder's history feeds the checker: a discarded write cannot explain a read", () => {
  const recorder = new HistoryRecorder(10);
  const refused = recorder.invoke(1, { type: "put", key: "k", value: "b" }, 0);
  recorder.discard(refused);
  const read = recorder.invoke(2, { type: "get", key: "k" }, 1);
  recorder.complete(read, { type: "value", value: "b" }, 2);
  assert.equal(checkLinearizability(recorder.history()).type, "notLinearizable");
});

Deno.test("HistoryRecorder refuses to settle an operation twice and to grow past its bound", () => {
  const recorder = new HistoryRecorder(1);
  const id = recorder.invoke(1, { type: "get", key: "k" }, 0);
  recorder.complete(id, { type: "value", value: null }, 1);
  assert.throws(
    () => recorder.complete(id, { type: "value", value: null }, 2),
    /already completed/,
  );
  assert.throws(() => recorder.discard(99), /no operation 99/);
  assert.throws(() => recorder.invoke(1, { type: "get", key: "k" }, 3), /more than 1 operations/);
});
