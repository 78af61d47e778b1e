import { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  acknowledge,
  bootstrappedStorage,
  testCore,
  voteRequest,
} from "../../../tests/raft/network.ts";
import type { RaftCore } from "../../raft/raft_core.ts";
import type { Entry, Message, NodeId } from "../../raft/types.ts";
import type { MemoryStorage } from "../../storage/memory_storage.ts";
import { type CrashPoint, ReadyDriver, type ReadyStorage } from "./ready_driver.ts";

/** A node whose every step is written to `log`, in order. */
interface Recorded {
  core: RaftCore;
  storage: MemoryStorage;
  driver: ReadyDriver<number>;
  log: string[];
  /** Runs the driver scheduled (the test's stand-in for `setImmediate`). */
  scheduled: (() => void)[];
  /** Where the process dies, once set. */
  crash: { at: CrashPoint | null };
}

function recorded(id: NodeId): Recorded {
  const storage = bootstrappedStorage([1, 2, 3]);
  const core = testCore(id, storage, { preVote: false, checkQuorum: false });
  const log: string[] = [];
  const scheduled: (() => void)[] = [];
  const crash: { at: CrashPoint | null } = { at: null };
  let inTransaction = false;
  const recordingStorage: ReadyStorage = {
    persist: (request) => {
      log.push(`persist ${request.entries.length} entries`);
      storage.persist(request);
    },
    transaction: (fn, { durable }) => {
      inTransaction = true;
      try {
        return storage.transaction(fn, { durable });
      } finally {
        inTransaction = false;
        log.push(durable ? "commit synced" : "commit unsynced");
      }
    },
  };
  const driver = new ReadyDriver<number>({
    core,
    storage: recordingStorage,
    stateMachine: {
      restore: () => log.push("restore"),
      applyAll: (entries: readonly Entry[]) => {
        if (entries.length > 0) {
          log.push(`apply ${entries.length}${inTransaction ? " in the transaction" : ""}`);
        }
        return entries.map((entry) => entry.index);
      },
    },
    send: (messages: Message[]) =>
      log.push(`send ${messages.map((message) => `${message.type}→${message.to}`).join(" ")}`),
    scheduler: { soon: (run) => scheduled.push(run) },
    events: {
      applied: (_entry, index) => log.push(`applied ${index}`),
      advanced: () => log.push("advanced"),
    },
    crashesAt: (point) => point === crash.at,
  });
  return { core, storage, driver, log, scheduled, crash };
}

/** Node 1 of three as leader, its followers caught up, its log of events cleared. */
function leader(): Recorded {
  const node = recorded(1);
  node.core.campaign();
  node.core.step({
    type: "RequestVoteResponse",
    term: 2,
    from: 2,
    to: 1,
    voteGranted: true,
    preVote: false,
  });
  node.driver.run();
  for (const from of [2, 3]) acknowledge(node.core, from, node.core.status().lastIndex);
  node.driver.run();
  node.log.length = 0;
  return node;
}

Deno.test("ReadyDriver sends a leader's AppendEntries before the synced persist, applies in the same transaction, and advances last", () => {
  const node = leader();
  node.core.propose(new Uint8Array([1]));
  node.driver.run();
  deepStrictEqual(node.log, [
    "send AppendEntries→2 AppendEntries→3",
    "persist 1 entries",
    "commit synced",
    "advanced",
  ]);
  node.log.length = 0;
  for (const from of [2, 3]) acknowledge(node.core, from, node.core.status().lastIndex);
  node.driver.run();
  // The commit reaches the followers early; the Ready only commits, so it does not sync.
  deepStrictEqual(node.log, [
    "send AppendEntries→2 AppendEntries→3",
    "persist 0 entries",
    "apply 1 in the transaction",
    "commit unsynced",
    "applied 8",
    "advanced",
  ]);
});

Deno.test("ReadyDriver sends a vote only after the transaction that makes it durable", () => {
  const node = recorded(2);
  node.driver.run();
  node.log.length = 0;
  node.core.step(voteRequest(3, 2, 2));
  node.driver.run();
  deepStrictEqual(node.log, [
    "persist 0 entries",
    "commit synced",
    "send RequestVoteResponse→3",
    "advanced",
  ]);
});

Deno.test("ReadyDriver.schedule() coalesces: many calls before the scheduler runs make one run", () => {
  const node = recorded(2);
  node.driver.schedule();
  node.driver.schedule();
  strictEqual(node.scheduled.length, 1);
  node.scheduled.shift()!();
  strictEqual(node.core.hasReady(), false);
  node.driver.schedule();
  strictEqual(node.scheduled.length, 1, "a new run is scheduled once the previous one ran");
});

Deno.test("ReadyDriver crashing after the early send has written nothing", () => {
  const node = leader();
  node.crash.at = "afterEarlySend";
  const lastIndex = node.storage.lastIndex();
  node.core.propose(new Uint8Array([1]));
  node.driver.run();
  deepStrictEqual(node.log, ["send AppendEntries→2 AppendEntries→3"]);
  strictEqual(node.storage.lastIndex(), lastIndex);
  strictEqual(node.driver.stopped, true);
});

Deno.test("ReadyDriver crashing after the persist has synced and applied, and sent, answered and advanced nothing", () => {
  const node = recorded(2);
  node.crash.at = "afterPersist";
  node.driver.run();
  deepStrictEqual(node.log, [
    "persist 0 entries",
    "apply 6 in the transaction",
    "commit unsynced",
  ]);
  strictEqual(node.driver.stopped, true);
  node.core.step({ type: "Heartbeat", term: 1, from: 1, to: 2, commit: 6, readContext: 0 });
  node.driver.run();
  strictEqual(node.log.length, 3, "a crashed driver does nothing more");
});
