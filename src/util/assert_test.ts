import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { assert, InvariantViolation } from "./assert.ts";

Deno.test("assert() passes silently when the condition holds", () => {
  let detailCalls = 0;
  assert(1 + 1 === 2, "arithmetic", {
    detail: () => {
      detailCalls += 1;
      return "never built";
    },
  });
  strictEqual(detailCalls, 0);
});

Deno.test("assert() throws an InvariantViolation naming the invariant and its values", () => {
  const commit = 5;
  const applied = 7;
  throws(
    () =>
      assert(applied <= commit, "applied <= commit", {
        detail: () => `applied ${applied}, commit ${commit}`,
      }),
    (error: unknown) => {
      if (!(error instanceof InvariantViolation)) return false;
      deepStrictEqual(
        [error.invariant, error.message, error.name],
        [
          "applied <= commit",
          "invariant violated: applied <= commit (applied 7, commit 5)",
          "InvariantViolation",
        ],
      );
      return true;
    },
  );
});
