import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkLinearizability,
  cutAt,
  type KvInput,
  type KvOperation,
  type KvOutput,
  type RegisterState,
  removableSoundly,
  searchLinearization,
  stepRegister,
} from "./linearizability.ts";

/** Builds histories tersely: times are `[invoke, return]`, or `[invoke]` for an unknown outcome. */
class History {
  readonly operations: KvOperation[] = [];

  put(key: string, value: string, times: number[], clientId = 0): this {
    return this.add({ type: "put", key, value }, { type: "ok" }, times, clientId);
  }

  get(key: string, value: string | null, times: number[], clientId = 0): this {
    return this.add({ type: "get", key }, { type: "value", value }, times, clientId);
  }

  delete(key: string, times: number[], clientId = 0): this {
    return this.add({ type: "delete", key }, { type: "ok" }, times, clientId);
  }

  compareAndSet(
    key: string,
    swap: { expected: string | null; value: string; succeeded: boolean },
    times: number[],
    clientId = 0,
  ): this {
    const input: KvInput = {
      type: "compareAndSet",
      key,
      expected: swap.expected,
      value: swap.value,
    };
    return this.add(input, { type: "compareAndSet", succeeded: swap.succeeded }, times, clientId);
  }

  private add(input: KvInput, output: KvOutput, times: number[], clientId: number): this {
    const [invokeTime = 0, returnTime] = times;
    this.operations.push({
      id: this.operations.length + 1,
      clientId,
      input,
      output: returnTime === undefined ? null : output,
      invokeTime,
      returnTime: returnTime ?? Infinity,
    });
    return this;
  }
}

function verdict(history: History): string {
  return checkLinearizability(history.operations).type;
}

/** Asserts that `order` is a linearization of `operations`: every one once, in real-time order, legal. */
function assertWitness(operations: readonly KvOperation[], order: readonly KvOperation[]): void {
  assert.deepEqual(
    order.map((operation) => operation.id).sort((a, b) => a - b),
    operations.map((operation) => operation.id).sort((a, b) => a - b),
    "the witness orders every operation once",
  );
  let state: RegisterState = null;
  order.forEach((operation, position) => {
    const step = stepRegister(state, operation.input, operation.output);
    assert.ok(step.legal, `step ${position} (#${operation.id}) is illegal from state ${state}`);
    state = step.state;
    for (const later of order.slice(position + 1)) {
      const laterReturnsFirst = later.output !== null && later.returnTime < operation.invokeTime;
      assert.ok(!laterReturnsFirst, `#${later.id} returned before #${operation.id} was invoked`);
    }
  });
}

Deno.test("stepRegister() applies put, delete and compare-and-set and checks get", () => {
  assert.deepEqual(stepRegister(null, { type: "put", key: "k", value: "a" }, { type: "ok" }), {
    legal: true,
    state: "a",
  });
  assert.deepEqual(stepRegister("a", { type: "delete", key: "k" }, { type: "ok" }), {
    legal: true,
    state: null,
  });
  assert.deepEqual(stepRegister("a", { type: "get", key: "k" }, { type: "value", value: "b" }), {
    legal: false,
  });
  assert.deepEqual(stepRegister(null, { type: "get", key: "k" }, { type: "value", value: null }), {
    legal: true,
    state: null,
  });
  const swap: KvInput = { type: "compareAndSet", key: "k", expected: "a", value: "b" };
  assert.deepEqual(stepRegister("a", swap, { type: "compareAndSet", succeeded: true }), {
    legal: true,
    state: "b",
  });
  assert.deepEqual(stepRegister("x", swap, { type: "compareAndSet", succeeded: true }), {
    legal: false,
  });
  assert.deepEqual(stepRegister("x", swap, { type: "compareAndSet", succeeded: false }), {
    legal: true,
    state: "x",
  });
  assert.deepEqual(stepRegister("a", swap, null), { legal: true, state: "b" });
});

Deno.test("stepRegister() checks what a delete and a compare-and-set report about the old value", () => {
  assert.deepEqual(
    stepRegister("a", { type: "delete", key: "k" }, { type: "deleted", existed: false }),
    {
      legal: false,
    },
  );
  assert.deepEqual(
    stepRegister("a", { type: "delete", key: "k" }, { type: "deleted", existed: true }),
    {
      legal: true,
      state: null,
    },
  );
  const swap: KvInput = { type: "compareAndSet", key: "k", expected: "a", value: "b" };
  const failedSeeing = (current: string | null) => ({
    type: "compareAndSet" as const,
    succeeded: false,
    current,
  });
  assert.deepEqual(stepRegister("x", swap, failedSeeing("x")), { legal: true, state: "x" });
  assert.deepEqual(stepRegister("x", swap, failedSeeing("y")), { legal: false });
  assert.deepEqual(
    stepRegister("a", swap, { type: "compareAndSet", succeeded: true, current: "b" }),
    {
      legal: true,
      state: "b",
    },
  );
});

Deno.test("checkLinearizability() rejects a delete that reports a missing key after a completed put", () => {
  const history = new History().put("k", "a", [0, 1]);
  history.operations.push({
    id: 2,
    clientId: 1,
    input: { type: "delete", key: "k" },
    output: { type: "deleted", existed: false },
    invokeTime: 2,
    returnTime: 3,
  });
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() accepts an empty history and a sequential one", () => {
  assert.equal(verdict(new History()), "linearizable");
  const history = new History()
    .get("k", null, [0, 1])
    .put("k", "a", [2, 3])
    .get("k", "a", [4, 5])
    .compareAndSet("k", { expected: "a", value: "b", succeeded: true }, [6, 7])
    .compareAndSet("k", { expected: "a", value: "c", succeeded: false }, [8, 9])
    .delete("k", [10, 11])
    .get("k", null, [12, 13]);
  assert.equal(verdict(history), "linearizable");
});

Deno.test("checkLinearizability() accepts concurrent overlapping writes read in either order", () => {
  for (const [first, second] of [["a", "b"], ["b", "a"]]) {
    const history = new History()
      .put("k", "a", [0, 10], 1)
      .put("k", "b", [2, 8], 2)
      .get("k", first ?? "", [3, 4], 3)
      .get("k", second ?? "", [9, 12], 3)
      .get("k", second ?? "", [13, 14], 4);
    assert.equal(verdict(history), "linearizable", `reads ${first} then ${second}`);
  }
});

Deno.test("checkLinearizability() accepts a read concurrent with a write seeing old or new value", () => {
  const history = new History()
    .put("k", "old", [0, 1])
    .put("k", "new", [2, 10], 1)
    .get("k", "new", [3, 4], 2)
    .get("k", "new", [5, 6], 3);
  assert.equal(verdict(history), "linearizable");
  const oldSeen = new History().put("k", "old", [0, 1]).put("k", "new", [2, 10], 1).get(
    "k",
    "old",
    [3, 9],
    2,
  );
  assert.equal(verdict(oldSeen), "linearizable");
});

Deno.test("checkLinearizability() accepts an unknown-outcome write that took effect", () => {
  const history = new History()
    .put("k", "a", [0, 1])
    .put("k", "lost?", [2], 1)
    .get("k", "a", [3, 4], 2)
    .get("k", "lost?", [50, 51], 2)
    .get("k", "lost?", [52, 53], 3);
  assert.equal(verdict(history), "linearizable");
});

Deno.test("checkLinearizability() accepts an unknown-outcome write that never took effect", () => {
  const history = new History()
    .put("k", "a", [0, 1])
    .put("k", "lost?", [2], 1)
    .delete("k", [3], 1)
    .get("k", "a", [100, 101], 2);
  assert.equal(verdict(history), "linearizable");
});

Deno.test("checkLinearizability() accepts an unknown compare-and-set whose success a later read shows", () => {
  const history = new History()
    .put("k", "a", [0, 1])
    .compareAndSet("k", { expected: "a", value: "b", succeeded: true }, [2])
    .get("k", "b", [5, 6], 1);
  assert.equal(verdict(history), "linearizable");
});

Deno.test("checkLinearizability() rejects a stale read after a completed write", () => {
  const history = new History().put("k", "a", [0, 1]).put("k", "b", [2, 3]).get(
    "k",
    "a",
    [4, 5],
    1,
  );
  const result = checkLinearizability(history.operations);
  assert.equal(result.type, "notLinearizable");
  if (result.type !== "notLinearizable") return;
  assert.equal(result.key, "k");
  assert.deepEqual(result.operations.map((operation) => operation.id), [1, 2, 3]);
  assert.equal(result.minimal, true);
  assert.match(result.explanation, /#3 client 1 \[4, 5\] get\("k"\) → "a"/);
});

Deno.test("checkLinearizability() rejects a read of a value never written", () => {
  const history = new History().put("k", "a", [0, 10]).get("k", "ghost", [2, 3], 1);
  const result = checkLinearizability(history.operations);
  assert.equal(result.type, "notLinearizable");
  if (result.type === "notLinearizable") {
    assert.deepEqual(result.operations.map((operation) => operation.id), [2]);
  }
});

Deno.test("checkLinearizability() rejects a lost update visible through compare-and-set", () => {
  // Two increments from the same value both succeed: one update is lost.
  const history = new History()
    .put("k", "0", [0, 1])
    .compareAndSet("k", { expected: "0", value: "1", succeeded: true }, [2, 6], 1)
    .compareAndSet("k", { expected: "0", value: "1'", succeeded: true }, [3, 5], 2);
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() rejects two clients seeing concurrent writes in opposite orders", () => {
  const history = new History()
    .put("k", "a", [0, 100], 1)
    .put("k", "b", [0, 100], 2)
    .get("k", "a", [10, 20], 3)
    .get("k", "b", [30, 40], 3)
    .get("k", "b", [10, 20], 4)
    .get("k", "a", [30, 40], 4);
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() rejects a value that reappears after being overwritten", () => {
  const history = new History()
    .put("k", "a", [0, 10], 1)
    .put("k", "b", [0, 10], 2)
    .get("k", "a", [11, 12], 3)
    .get("k", "b", [13, 14], 3)
    .get("k", "a", [15, 16], 3);
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() rejects a read of a deleted key's old value", () => {
  const history = new History().put("k", "a", [0, 1]).delete("k", [2, 3]).get("k", "a", [4, 5]);
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() rejects a compare-and-set that succeeds against the wrong value", () => {
  const history = new History()
    .put("k", "a", [0, 1])
    .compareAndSet("k", { expected: null, value: "b", succeeded: true }, [2, 3]);
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() rejects a read of an unknown write before that write was invoked", () => {
  const history = new History().get("k", "later", [0, 1]).put("k", "later", [5]);
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() rejects a completed write missing from every later read", () => {
  // No acknowledged write may be lost: once put(b) returned, reading a forever is wrong.
  const history = new History()
    .put("k", "a", [0, 1])
    .put("k", "b", [2, 3], 1)
    .put("k", "c", [4], 2)
    .get("k", "a", [10, 11], 3);
  assert.equal(verdict(history), "notLinearizable");
});

Deno.test("checkLinearizability() keeps in its explanation the write a delete saw existing", () => {
  const history = new History().put("k", "a", [0, 1]);
  history.operations.push({
    id: 2,
    clientId: 1,
    input: { type: "delete", key: "k" },
    output: { type: "deleted", existed: true },
    invokeTime: 2,
    returnTime: 3,
  });
  history.get("k", "ghost", [4, 5], 2);
  const result = checkLinearizability(history.operations);
  assert.equal(result.type, "notLinearizable");
  if (result.type !== "notLinearizable") return;
  // The ghost read alone explains the rejection; the put may go only because the delete stays out.
  assert.deepEqual(result.operations.map((operation) => operation.id), [3]);
  const withoutGhost = [history.operations[0]!, history.operations[1]!, {
    ...history.operations[1]!,
    id: 4,
    invokeTime: 6,
    returnTime: 7,
  }];
  const second = checkLinearizability(withoutGhost);
  assert.equal(second.type, "notLinearizable");
  if (second.type === "notLinearizable") {
    assert.deepEqual(second.operations.map((operation) => operation.id), [1, 2, 4]);
  }
});

Deno.test("checkLinearizability() names the key at fault and only the operations involved", () => {
  const history = new History();
  for (let i = 0; i < 20; i++) history.put("noise", `n${i}`, [i * 10, i * 10 + 15], i % 3);
  history.put("k", "a", [100, 101], 7).get("k", null, [102, 103], 8);
  for (let i = 0; i < 10; i++) history.get("k", "a", [110 + i, 111 + i], 9);
  const result = checkLinearizability(history.operations);
  assert.equal(result.type, "notLinearizable");
  if (result.type !== "notLinearizable") return;
  assert.equal(result.key, "k");
  assert.deepEqual(result.operations.map((operation) => operation.input.type), ["put", "get"]);
  assert.equal(result.minimal, true);
  assert.match(
    result.explanation,
    /^key "k": not linearizable once time 103 is reached\. No order of these 2 operations/,
  );
});

Deno.test("checkLinearizability() answers unknown when the step budget runs out", () => {
  const history = new History();
  // Many mutually concurrent writes, then reads that see v0, v1, then v0 again: impossible,
  // but only after trying the orders of the writes.
  for (let i = 0; i < 10; i++) history.put("k", `v${i}`, [0, 100], i);
  history.get("k", "v0", [101, 102], 99).get("k", "v1", [103, 104], 99).get(
    "k",
    "v0",
    [105, 106],
    99,
  );
  const result = checkLinearizability(history.operations, { stepsMax: 50 });
  assert.equal(result.type, "unknown");
  if (result.type === "unknown") {
    assert.equal(result.key, "k");
    assert.match(result.reason, /budget exceeded/);
  }
  assert.equal(checkLinearizability(history.operations).type, "notLinearizable");
});

Deno.test("checkLinearizability() refuses a malformed history", () => {
  const history = new History().put("k", "a", [0, 1]);
  const duplicate = [...history.operations, ...history.operations];
  assert.throws(() => checkLinearizability(duplicate), /operation id 1 appears twice/);
  const backwards = new History().put("k", "a", [5, 1]);
  assert.throws(() => checkLinearizability(backwards.operations), /before its invocation/);
});

Deno.test("searchLinearization() returns a witness order that is legal and respects real time", () => {
  const history = new History()
    .put("k", "a", [0, 10], 1)
    .put("k", "b", [2, 8], 2)
    .get("k", "a", [9, 12], 3)
    .compareAndSet("k", { expected: "a", value: "c", succeeded: true }, [13, 20], 1)
    .get("k", "c", [14, 15], 2)
    .put("k", "d", [16], 3);
  const outcome = searchLinearization(history.operations, 10_000);
  assert.equal(outcome.type, "linearizable");
  if (outcome.type === "linearizable") assertWitness(history.operations, outcome.order);
});

/** A random sequential run: operations on a few keys, each with the output the model gives. */
const sequentialRun = fc.array(
  fc.record({
    key: fc.constantFrom("a", "b", "c"),
    kind: fc.constantFrom("put", "get", "delete", "compareAndSet"),
    expectCurrent: fc.boolean(),
    invokeSlack: fc.nat(40),
    returnSlack: fc.nat(40),
    fate: fc.constantFrom("returned", "returned", "returned", "unknownApplied", "unknownLost"),
  }),
  { maxLength: 60 },
);

type SequentialRun = typeof sequentialRun extends fc.Arbitrary<infer T> ? T : never;

/**
 * Turns a sequential run into a concurrent history: each operation takes effect at its
 * point 10·i and gets an interval around it, so the run itself is a linearization.
 */
function historyFromRun(run: SequentialRun): KvOperation[] {
  const state = new Map<string, string | null>();
  return run.map((step, index): KvOperation => {
    const current = state.get(step.key) ?? null;
    const value = `v${index}`;
    const input: KvInput = step.kind === "put"
      ? { type: "put", key: step.key, value }
      : step.kind === "compareAndSet"
      ? {
        type: "compareAndSet",
        key: step.key,
        expected: step.expectCurrent ? current : `x${index}`,
        value,
      }
      : { type: step.kind, key: step.key };
    const point = 10 * index + 5;
    const applied = step.fate !== "unknownLost";
    const effect = applied
      ? stepRegister(current, input, null)
      : { legal: true as const, state: current };
    if (effect.legal) state.set(step.key, effect.state);
    // Half the deletes and swaps also report the old value, as the real store does.
    const detailed = index % 2 === 0;
    const succeeded = input.type === "compareAndSet" && current === input.expected;
    const output: KvOutput = input.type === "get"
      ? { type: "value", value: current }
      : input.type === "compareAndSet"
      ? detailed
        ? { type: "compareAndSet", succeeded, current: succeeded ? input.value : current }
        : { type: "compareAndSet", succeeded }
      : input.type === "delete" && detailed
      ? { type: "deleted", existed: current !== null }
      : { type: "ok" };
    // A lost operation may be invoked at any time before the end; it never takes effect.
    const invokeTime = point - step.invokeSlack;
    const returned = step.fate === "returned";
    return {
      id: index,
      clientId: index % 5,
      input,
      output: returned ? output : null,
      invokeTime,
      returnTime: returned ? point + step.returnSlack : Infinity,
    };
  });
}

Deno.test("checkLinearizability() accepts every history generated from a sequential run", () => {
  fc.assert(
    fc.property(sequentialRun, (run) => {
      const history = historyFromRun(run);
      const result = checkLinearizability(history);
      assert.equal(result.type, "linearizable", JSON.stringify(result));
    }),
    { seed: 20240611, numRuns: 300 },
  );
});

Deno.test("checkLinearizability() rejects every generated history plus a read of a value never written", () => {
  fc.assert(
    fc.property(sequentialRun, fc.nat(700), (run, readTime) => {
      const history = historyFromRun(run);
      const ghostRead: KvOperation = {
        id: history.length,
        clientId: 9,
        input: { type: "get", key: "a" },
        output: { type: "value", value: "never written" },
        invokeTime: readTime,
        returnTime: readTime + 3,
      };
      const result = checkLinearizability([...history, ghostRead]);
      assert.equal(result.type, "notLinearizable");
      if (result.type !== "notLinearizable") return;
      assert.ok(result.operations.includes(ghostRead), result.explanation);
      assert.equal(checkLinearizability(result.operations).type, "notLinearizable");
    }),
    { seed: 7, numRuns: 200 },
  );
});

/** Small arbitrary histories (outputs drawn at random, so many are not linearizable). */
const smallHistory = fc.array(
  fc.record({
    kind: fc.constantFrom("put", "get", "delete", "compareAndSet"),
    value: fc.constantFrom("x", "y"),
    expected: fc.constantFrom<string | null>("x", "y", null),
    read: fc.constantFrom<string | null>("x", "y", null),
    succeeded: fc.boolean(),
    detailed: fc.boolean(),
    existed: fc.boolean(),
    invokeTime: fc.nat(20),
    duration: fc.nat(10),
    unknown: fc.boolean(),
  }),
  { maxLength: 7 },
).map((steps) =>
  steps.map((step, index): KvOperation => {
    const key = "k";
    const input: KvInput = step.kind === "put"
      ? { type: "put", key, value: step.value }
      : step.kind === "compareAndSet"
      ? { type: "compareAndSet", key, expected: step.expected, value: step.value }
      : { type: step.kind, key };
    const output: KvOutput = input.type === "get"
      ? { type: "value", value: step.read }
      : input.type === "compareAndSet"
      ? step.detailed
        ? { type: "compareAndSet", succeeded: step.succeeded, current: step.read }
        : { type: "compareAndSet", succeeded: step.succeeded }
      : input.type === "delete" && step.detailed
      ? { type: "deleted", existed: step.existed }
      : { type: "ok" };
    return {
      id: index,
      clientId: index,
      input,
      output: step.unknown ? null : output,
      invokeTime: step.invokeTime,
      returnTime: step.unknown ? Infinity : step.invokeTime + step.duration,
    };
  })
);

/** Linearizability by brute force: try every permutation. */
function linearizableByEnumeration(operations: readonly KvOperation[]): boolean {
  const search = (remaining: readonly KvOperation[], state: RegisterState): boolean => {
    if (remaining.length === 0) return true;
    return remaining.some((operation, position) => {
      const others = remaining.filter((_, i) => i !== position);
      // Real time: nothing still to be placed may have returned before this one was invoked.
      const blocked = others.some((other) =>
        other.output !== null && other.returnTime < operation.invokeTime
      );
      if (blocked) return false;
      const step = stepRegister(state, operation.input, operation.output);
      return step.legal && search(others, step.state);
    });
  };
  return search(operations, null);
}

Deno.test("checkLinearizability() agrees with brute-force enumeration on small histories", () => {
  let rejected = 0;
  fc.assert(
    fc.property(smallHistory, (history) => {
      const expected = linearizableByEnumeration(history);
      const result = checkLinearizability(history);
      assert.equal(result.type, expected ? "linearizable" : "notLinearizable");
      if (result.type === "notLinearizable") {
        rejected += 1;
        assert.equal(linearizableByEnumeration(result.operations), false, result.explanation);
      }
      const outcome = searchLinearization(history, 1_000_000);
      if (outcome.type === "linearizable") assertWitness(history, outcome.order);
    }),
    { seed: 42, numRuns: 3000 },
  );
  // The generator must exercise both verdicts for the comparison to mean anything.
  assert.ok(rejected > 300 && rejected < 2700, `rejected ${rejected} of 3000`);
});

Deno.test("explanation reductions are sound: a linearizable history stays so when cut or reduced", () => {
  let reductions = 0;
  fc.assert(
    fc.property(sequentialRun, (run) => {
      const history = historyFromRun(run).filter((operation) => operation.input.key === "a").slice(
        0,
        8,
      );
      assert.ok(linearizableByEnumeration(history));
      for (const operation of history) {
        if (!removableSoundly(operation, history)) continue;
        reductions += 1;
        const reduced = history.filter((other) => other !== operation);
        assert.ok(
          linearizableByEnumeration(reduced),
          `dropping #${operation.id} broke ${JSON.stringify(history)}`,
        );
      }
      for (const operation of history) {
        if (operation.output === null) continue;
        assert.ok(
          linearizableByEnumeration(cutAt(history, operation.returnTime)),
          `cut at ${operation.returnTime}`,
        );
      }
    }),
    { seed: 99, numRuns: 400 },
  );
  assert.ok(reductions > 200, `only ${reductions} reductions were exercised`);
});

Deno.test("searchLinearization() sets aside unknown writes nothing observes, so they cost no search", () => {
  const history = new History().put("k", "seen", [0, 1]);
  for (let i = 0; i < 30; i++) history.put("k", `lost-${i}`, [2 + i], 100 + i);
  for (let i = 0; i < 10; i++) {
    history.get("k", i < 5 ? "seen" : "late", [40 + 2 * i, 41 + 2 * i], 1);
  }
  history.put("k", "late", [45], 2);
  const outcome = searchLinearization(history.operations, 10_000);
  assert.equal(outcome.type, "linearizable");
  if (outcome.type === "linearizable") assertWitness(history.operations, outcome.order);
  // The unknown put that a read observed is kept in the search: a read of it before its invocation is refused.
  history.get("k", "late", [3, 4], 3);
  assert.equal(searchLinearization(history.operations, 10_000).type, "notLinearizable");
});

/**
 * The history of simulation seed 502: a cluster down most of the run, so 30 of its 32
 * operations have unknown outcomes. It once exhausted the 5,000,000-step budget.
 */
const SEED_502_CALLS: [
  number,
  number,
  ["put", string] | ["get"] | ["delete"] | ["compareAndSet", string | null, string],
][] = [
  [1, 1, ["compareAndSet", null, "c1-1"]],
  [2, 1, ["get"]],
  [1, 202, ["compareAndSet", null, "c1-2"]],
  [2, 202, ["compareAndSet", null, "c2-2"]],
  [1, 403, ["compareAndSet", null, "c1-3"]],
  [2, 403, ["put", "c2-3"]],
  [1, 604, ["compareAndSet", null, "c1-4"]],
  [2, 604, ["put", "c2-4"]],
  [1, 805, ["delete"]],
  [2, 805, ["put", "c2-5"]],
  [1, 1006, ["compareAndSet", null, "c1-6"]],
  [2, 1006, ["get"]],
  [1, 1138, ["compareAndSet", "c2-3", "c1-7"]],
  [2, 1207, ["put", "c2-7"]],
  [1, 1339, ["put", "c1-8"]],
  [2, 1408, ["compareAndSet", null, "c2-8"]],
  [1, 1540, ["delete"]],
  [2, 1609, ["put", "c2-9"]],
  [1, 1741, ["compareAndSet", "c2-3", "c1-10"]],
  [2, 1810, ["compareAndSet", null, "c2-10"]],
  [1, 1942, ["put", "c1-11"]],
  [2, 2011, ["put", "c2-11"]],
  [1, 2143, ["compareAndSet", "c2-3", "c1-12"]],
  [2, 2212, ["get"]],
  [1, 2344, ["get"]],
  [2, 2413, ["get"]],
  [1, 2545, ["put", "c1-14"]],
  [2, 2614, ["get"]],
  [1, 2746, ["put", "c1-15"]],
  [2, 2815, ["get"]],
  [1, 2947, ["put", "c1-16"]],
  [1, 3295, ["get"]],
];

Deno.test("searchLinearization() settles a history of mostly unknown outcomes (simulation seed 502) quickly", () => {
  const history: KvOperation[] = SEED_502_CALLS.map(([clientId, invokeTime, call], i) => {
    const key = "k0";
    const input: KvInput = call[0] === "put"
      ? { type: "put", key, value: call[1] }
      : call[0] === "compareAndSet"
      ? { type: "compareAndSet", key, expected: call[1], value: call[2] }
      : { type: call[0], key };
    return { id: i + 1, clientId, input, output: null, invokeTime, returnTime: Infinity };
  });
  const swap = history[10]!;
  Object.assign(swap, {
    output: { type: "compareAndSet", succeeded: false, current: "c2-3" },
    returnTime: 1133,
  });
  const finalRead = history[31]!;
  Object.assign(finalRead, { output: { type: "value", value: "c1-7" }, returnTime: 3306 });
  const outcome = searchLinearization(history, 100_000);
  assert.equal(outcome.type, "linearizable");
  if (outcome.type === "linearizable") assertWitness(history, outcome.order);
  // Reading a value no operation wrote is still refused, and as quickly.
  Object.assign(finalRead, { output: { type: "value", value: "never" } });
  assert.equal(searchLinearization(history, 100_000).type, "notLinearizable");
});
