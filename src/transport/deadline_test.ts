import assert from "node:assert/strict";
import { withDeadline } from "./deadline.ts";

const never = new Promise<never>(() => {});

Deno.test("withDeadline() resolves with the work's value when it is in time", async () => {
  assert.equal(
    await withDeadline(Promise.resolve(7), { timeoutMs: 1000, onTimeout: () => new Error("late") }),
    7,
  );
});

Deno.test("withDeadline() rejects with onTimeout() when the work does not settle", async () => {
  await assert.rejects(
    withDeadline(never, { timeoutMs: 5, onTimeout: () => new RangeError("deadline passed") }),
    { name: "RangeError", message: "deadline passed" },
  );
});

Deno.test("withDeadline() rejects with the abort reason, also when aborted before it starts", async () => {
  const controller = new AbortController();
  const pending = withDeadline(never, {
    timeoutMs: 1000,
    signal: controller.signal,
    onTimeout: () => new Error("late"),
  });
  controller.abort(new Error("caller gave up"));
  await assert.rejects(pending, { message: "caller gave up" });
  await assert.rejects(
    withDeadline(never, {
      timeoutMs: 1000,
      signal: controller.signal,
      onTimeout: () => new Error("late"),
    }),
    { message: "caller gave up" },
  );
});

Deno.test("withDeadline() hands a value that arrives after the deadline to onLate()", async () => {
  let release: (value: string) => void = () => {};
  const work = new Promise<string>((resolve) => release = resolve);
  const late: string[] = [];
  await assert.rejects(
    withDeadline(work, {
      timeoutMs: 1,
      onTimeout: () => new Error("late"),
      onLate: (value) => late.push(value),
    }),
    { message: "late" },
  );
  release("connection");
  await work;
  assert.deepStrictEqual(late, ["connection"]);
});

Deno.test("withDeadline() refuses a deadline that is not a positive whole number of ms", () => {
  for (const timeoutMs of [0, -1, 0.5, Number.NaN, 1e12]) {
    assert.throws(() => withDeadline(never, { timeoutMs, onTimeout: () => new Error("late") }));
  }
});
