import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { MemoryStorage } from "../storage/memory_storage.ts";
import { MembershipLog } from "./membership_log.ts";
import type { Entry, MembershipChange } from "./types.ts";

function change(index: number, term: number, membershipChange: MembershipChange): Entry {
  return { type: "membership", index, term, change: membershipChange };
}

function normal(index: number, term: number): Entry {
  return { type: "normal", index, term, data: new Uint8Array() };
}

const context = new Uint8Array();

Deno.test("MembershipLog.appended() applies changes at once and truncatedFrom() reverts them", () => {
  const log = new MembershipLog({ voters: [1, 2, 3], learners: [] });
  strictEqual(
    log.appended([normal(5, 2), change(6, 2, { type: "addLearner", nodeId: 4, context })]),
    true,
  );
  deepStrictEqual(log.conf, { voters: [1, 2, 3], learners: [4] });
  log.appended([change(7, 2, { type: "promoteLearner", nodeId: 4 })]);
  deepStrictEqual(log.conf, { voters: [1, 2, 3, 4], learners: [] });
  strictEqual(log.truncatedFrom(7), true);
  deepStrictEqual(log.conf, { voters: [1, 2, 3], learners: [4] });
  strictEqual(log.truncatedFrom(8), false);
  strictEqual(log.truncatedFrom(6), true);
  deepStrictEqual(log.conf, { voters: [1, 2, 3], learners: [] });
  strictEqual(log.hasUncommitted(), false);
});

Deno.test("MembershipLog.committedTo() makes changes final: truncation after them keeps them", () => {
  const log = new MembershipLog({ voters: [1], learners: [] });
  log.appended([change(2, 1, { type: "addLearner", nodeId: 2, context })]);
  log.appended([change(3, 1, { type: "promoteLearner", nodeId: 2 })]);
  log.committedTo(2);
  strictEqual(log.hasUncommitted(), true);
  log.truncatedFrom(3);
  deepStrictEqual(log.conf, { voters: [1], learners: [2] });
  log.committedTo(3);
  strictEqual(log.hasUncommitted(), false);
});

Deno.test("MembershipLog.recover() can still revert an uncommitted change found in storage after a restart", () => {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 1, vote: 1, commit: 3 },
    snapshot: null,
    entries: [
      change(1, 1, { type: "addLearner", nodeId: 1, context }),
      change(2, 1, { type: "promoteLearner", nodeId: 1 }),
      change(3, 1, { type: "addLearner", nodeId: 2, context }),
      change(4, 1, { type: "promoteLearner", nodeId: 2 }),
    ],
  });
  const log = MembershipLog.recover(storage, {
    committed: 3,
    confState: storage.initialState().confState,
  });
  deepStrictEqual([log.conf, log.hasUncommitted()], [{ voters: [1, 2], learners: [] }, true]);
  log.truncatedFrom(4);
  deepStrictEqual(log.conf, { voters: [1], learners: [2] });
});

Deno.test("MembershipLog.recover() takes the stored configuration when everything is committed", () => {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 1, vote: 1, commit: 2 },
    snapshot: null,
    entries: [
      change(1, 1, { type: "addLearner", nodeId: 1, context }),
      change(2, 1, { type: "promoteLearner", nodeId: 1 }),
    ],
  });
  const log = MembershipLog.recover(storage, {
    committed: 2,
    confState: storage.initialState().confState,
  });
  deepStrictEqual([log.conf, log.hasUncommitted()], [{ voters: [1], learners: [] }, false]);
});
