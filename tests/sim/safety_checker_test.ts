import assert from "node:assert/strict";
import type { Entry } from "../../src/raft/types.ts";
import { entryContent, type LogView, SafetyChecker, SafetyViolation } from "./safety_checker.ts";

function normal(index: number, term: number, text = `e${index}`): Entry {
  return { type: "normal", index, term, data: new TextEncoder().encode(text) };
}

function logOf(entries: Entry[], snapshotIndex = 0): LogView {
  return {
    term: (index) => entries.find((entry) => entry.index === index)?.term ?? null,
    snapshotIndex: () => snapshotIndex,
  };
}

function violates(property: string, action: () => void): void {
  assert.throws(
    action,
    (error: unknown) => error instanceof SafetyViolation && error.property === property,
  );
}

Deno.test("SafetyChecker.observeLeader() allows one leader per term and refuses a second", () => {
  const checker = new SafetyChecker();
  checker.observeLeader(1, 2);
  checker.observeLeader(1, 2);
  checker.observeLeader(2, 3);
  violates("election safety", () => checker.observeLeader(3, 2));
});

Deno.test("SafetyChecker.observePersisted() refuses the same index and term with other content or history", () => {
  const checker = new SafetyChecker();
  checker.observePersisted(1, [normal(1, 1), normal(2, 1), normal(3, 2)], 0);
  checker.observePersisted(2, [normal(2, 1), normal(3, 2)], 1);
  checker.observePersisted(3, [normal(3, 3, "other")], 1);
  violates("log matching", () => checker.observePersisted(2, [normal(3, 2, "changed")], 1));
  violates("log matching", () => checker.observePersisted(3, [normal(2, 1)], 0));
});

Deno.test("SafetyChecker.observeCommitted() refuses a different entry at a committed index", () => {
  const checker = new SafetyChecker();
  checker.observeCommitted(1, normal(1, 1), 1);
  checker.observeCommitted(2, normal(1, 1), 2);
  assert.equal(checker.committedIndexMax, 1);
  violates("committed entries never change", () => checker.observeCommitted(3, normal(1, 2), 2));
  violates(
    "committed entries never change",
    () => checker.observeCommitted(3, normal(1, 1, "other"), 2),
  );
  violates("committed entries never change", () => {
    checker.observeSnapshot(3, { index: 1, term: 5, confState: { voters: [1], learners: [] } });
  });
});

Deno.test("SafetyChecker.checkLeaderCompleteness() refuses a leader missing a committed entry", () => {
  const checker = new SafetyChecker();
  for (const entry of [normal(1, 1), normal(2, 1), normal(3, 2)]) {
    checker.observeCommitted(1, entry, 2);
  }
  checker.checkLeaderCompleteness(
    2,
    3,
    logOf([normal(1, 1), normal(2, 1), normal(3, 2), normal(4, 3)]),
  );
  checker.checkLeaderCompleteness(4, 4, logOf([normal(3, 2)], 2));
  violates(
    "leader completeness",
    () => checker.checkLeaderCompleteness(3, 5, logOf([normal(1, 1), normal(2, 1)])),
  );
});

Deno.test("SafetyChecker.checkLeaderCompleteness() ignores entries committed only in its own term or later", () => {
  const checker = new SafetyChecker();
  checker.observeCommitted(1, normal(1, 1), 1);
  checker.observeCommitted(2, normal(2, 4), 4);
  checker.checkLeaderCompleteness(3, 3, logOf([normal(1, 1)]));
  violates(
    "leader completeness",
    () => checker.checkLeaderCompleteness(3, 5, logOf([normal(1, 1)])),
  );
});

Deno.test("SafetyChecker refuses diverging apply results and state images at the same index", () => {
  const checker = new SafetyChecker();
  checker.observeApplied(1, 5, "put@5");
  checker.observeApplied(2, 5, "put@5");
  violates("state machine safety", () => checker.observeApplied(3, 5, "error@5"));
  checker.observeStateImage(1, 7, "abc");
  violates("state machine safety", () => checker.observeStateImage(2, 7, "abd"));
});

Deno.test("SafetyChecker.observeAcknowledged() refuses an acknowledged write that is not the committed entry", () => {
  const checker = new SafetyChecker();
  checker.observeCommitted(1, normal(4, 2, "write"), 2);
  checker.observeAcknowledged(4, 2, normal(4, 2, "write"));
  violates(
    "acknowledged writes are kept",
    () => checker.observeAcknowledged(4, 3, normal(4, 3, "write")),
  );
  violates("acknowledged writes are kept", () => checker.observeAcknowledged(5, 2, normal(5, 2)));
});

Deno.test("entryContent() tells entries apart by content, membership changes included", () => {
  assert.notEqual(entryContent(normal(1, 1, "a")), entryContent(normal(1, 1, "b")));
  const add: Entry = {
    type: "membership",
    index: 1,
    term: 1,
    change: { type: "addLearner", nodeId: 4, context: new Uint8Array([1]) },
  };
  const promote: Entry = {
    type: "membership",
    index: 1,
    term: 1,
    change: { type: "promoteLearner", nodeId: 4 },
  };
  assert.notEqual(entryContent(add), entryContent(promote));
  assert.equal(entryContent(promote), "promoteLearner(4)");
});
