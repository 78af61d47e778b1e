/**
 * `ReadyDriver` when a persist fails for want of space: the Ready is held with nothing that
 * claims its durability done (no vote, no acknowledgement, no apply, no advance), and the
 * next run persists it and goes on. A storage fake refuses with SQLite's `SQLITE_FULL`
 * while `full` is set.
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { bootstrappedStorage, testCore, voteRequest } from "../../../tests/raft/network.ts";
import type { Entry, Message } from "../../raft/types.ts";
import { isDiskFullError } from "../../storage/storage.ts";
import { ReadyDriver, type ReadyStorage } from "./ready_driver.ts";

/** What `node:sqlite` throws when the disk is full. */
function sqliteFull(): Error {
  return Object.assign(new Error("database or disk is full"), { errcode: 13 });
}

/** Follower 2 of three over a storage that refuses while `disk.full`; every step logged. */
function follower() {
  const storage = bootstrappedStorage([1, 2, 3]);
  const core = testCore(2, storage, { preVote: false, checkQuorum: false });
  const log: string[] = [];
  const disk = { full: false, error: sqliteFull() };
  const fullStorage: ReadyStorage = {
    persist: (request) => storage.persist(request),
    transaction: (fn, { durable }) =>
      // MemoryStorage writes nothing of a transaction that throws.
      storage.transaction(() => {
        const result = fn();
        if (disk.full) {
          log.push("persist failed");
          throw disk.error;
        }
        log.push("persisted");
        return result;
      }, { durable }),
  };
  const driver = new ReadyDriver<number>({
    core,
    storage: fullStorage,
    stateMachine: {
      restore: () => {},
      applyAll: (entries: readonly Entry[]) => entries.map((entry) => entry.index),
    },
    send: (messages: Message[]) => log.push(...messages.map((m) => `send ${m.type}→${m.to}`)),
    scheduler: { soon: () => {} },
    persistRetryable: isDiskFullError,
    events: {
      persistFailed: () => log.push("held"),
      persistRecovered: () => log.push("recovered"),
      applied: (_entry, index) => log.push(`applied ${index}`),
      advanced: () => log.push("advanced"),
    },
  });
  driver.run();
  log.length = 0;
  return { core, storage, driver, log, disk };
}

const REQUEST_VOTE = voteRequest(3, 2, 2);

Deno.test("ReadyDriver holds a Ready whose persist failed with SQLITE_FULL: no vote leaves, nothing advances, until a run persists it", () => {
  const node = follower();
  node.disk.full = true;
  node.core.step(REQUEST_VOTE);
  node.driver.run();
  deepStrictEqual(node.log, ["persist failed", "held"]);
  strictEqual(node.driver.holding, true);
  strictEqual(node.storage.initialState().hardState.vote, 0, "the vote is not on disk");

  node.driver.run();
  deepStrictEqual(node.log, ["persist failed", "held", "persist failed", "held"]);
  strictEqual(node.driver.holding, true, "still full: still held");

  node.log.length = 0;
  node.disk.full = false;
  node.driver.run();
  deepStrictEqual(node.log, ["persisted", "recovered", "send RequestVoteResponse→3", "advanced"]);
  strictEqual(node.driver.holding, false);
  strictEqual(
    node.storage.initialState().hardState.vote,
    3,
    "the vote is durable before it is sent",
  );
  strictEqual(node.core.hasReady(), false);
});

Deno.test("ReadyDriver holds committed entries whose apply failed with SQLITE_FULL and applies them once, after the retry", () => {
  const node = follower();
  node.core.step({
    type: "AppendEntries",
    term: 1,
    from: 1,
    to: 2,
    prevLogIndex: 6,
    prevLogTerm: 1,
    entries: [{ type: "normal", term: 1, index: 7, data: new Uint8Array([1]) }],
    leaderCommit: 7,
  });
  node.disk.full = true;
  node.driver.run();
  deepStrictEqual(node.log, ["persist failed", "held"]);
  strictEqual(node.storage.lastIndex(), 6, "the entry is not on disk");
  node.disk.full = false;
  node.log.length = 0;
  node.driver.run();
  deepStrictEqual(node.log, [
    "persisted",
    "recovered",
    "send AppendEntriesResponse→1",
    "applied 7",
    "advanced",
  ]);
  strictEqual(node.storage.lastIndex(), 7);
});

Deno.test("ReadyDriver throws a persist error that is not retryable, as before", () => {
  const node = follower();
  node.disk.full = true;
  node.disk.error = Object.assign(new Error("disk I/O error"), { errcode: 10 });
  node.core.step(REQUEST_VOTE);
  throws(() => node.driver.run(), /disk I\/O error/);
  strictEqual(node.driver.holding, false);
  deepStrictEqual(node.log, ["persist failed"], "nothing sent");
});
