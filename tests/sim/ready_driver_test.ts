import assert from "node:assert/strict";
import type { AppendEntries, Entry } from "../../src/raft/types.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import { type CrashPoint, handleReady, type ReadyEffects } from "./ready_driver.ts";
import { founderStorage, memberContext, SimNode } from "./sim_node.ts";

const TUNING = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflightMessages: 8,
  maxMessageBytes: 1 << 16,
  maxUncommittedBytes: 1 << 20,
  preVote: true,
  checkQuorum: true,
};

/** A joining node 2 that has just received the founder's log plus its own addition, all committed. */
function joinerWithWork(): SimNode {
  const founderLog = founderStorage(1).entries(1, 4, Infinity);
  const addition: Entry = {
    type: "membership",
    term: 1,
    index: 4,
    change: { type: "addLearner", nodeId: 2, context: memberContext(2) },
  };
  const node = SimNode.start(2, new MemoryStorage(), { tuning: TUNING, random: () => 0.5 });
  const append: AppendEntries = {
    type: "AppendEntries",
    term: 1,
    from: 1,
    to: 2,
    prevLogIndex: 0,
    prevLogTerm: 0,
    entries: [...founderLog, addition],
    leaderCommit: 4,
  };
  node.core.step(append);
  assert.ok(node.core.hasReady());
  return node;
}

/** Effects that record what happened, in order, and crash at `crashAt`. */
function recordingEffects(crashAt: CrashPoint | null): { effects: ReadyEffects; events: string[] } {
  const events: string[] = [];
  const effects: ReadyEffects = {
    crashesAt: (point) => point === crashAt,
    persisted: () => events.push("persisted"),
    send: (message) => events.push(`send ${message.type}`),
    installed: () => events.push("installed"),
    applied: (entry) => events.push(`applied ${entry.index}`),
    readStates: () => events.push("readStates"),
  };
  return { effects, events };
}

Deno.test("handleReady() persists, then sends, then applies, then advances", () => {
  const node = joinerWithWork();
  const { effects, events } = recordingEffects(null);
  assert.equal(handleReady(node, effects), "advanced");
  assert.deepEqual(events, [
    "persisted",
    "send AppendEntriesResponse",
    "applied 1",
    "applied 2",
    "applied 3",
    "applied 4",
  ]);
  assert.equal(node.storage.lastIndex(), 4);
  assert.equal(node.stateMachine.appliedIndex(), 4);
  assert.deepEqual(node.stateMachine.appliedConfState(), { voters: [1], learners: [2] });
  assert.equal(node.core.hasReady(), false);
});

Deno.test("handleReady() crashing before persist leaves storage untouched and sends nothing", () => {
  const node = joinerWithWork();
  const { effects, events } = recordingEffects("beforePersist");
  assert.equal(handleReady(node, effects), "crashed");
  assert.deepEqual(events, []);
  assert.equal(node.storage.lastIndex(), 0);
});

Deno.test("handleReady() crashing before send keeps what was persisted and loses the rest", () => {
  const node = joinerWithWork();
  const { effects, events } = recordingEffects("beforeSend");
  assert.equal(handleReady(node, effects), "crashed");
  assert.deepEqual(events, ["persisted"]);
  assert.equal(node.storage.lastIndex(), 4);
  assert.equal(node.storage.initialState().hardState.commit, 4);
  assert.equal(node.stateMachine.appliedIndex(), 0);
});

Deno.test("handleReady() crashing before apply has sent its messages but applied nothing", () => {
  const node = joinerWithWork();
  const { effects, events } = recordingEffects("beforeApply");
  assert.equal(handleReady(node, effects), "crashed");
  assert.deepEqual(events, ["persisted", "send AppendEntriesResponse"]);
  assert.equal(node.stateMachine.appliedIndex(), 0);
});

Deno.test("SimNode.start() rebuilds the state machine from the durable snapshot after a crash", () => {
  const node = joinerWithWork();
  handleReady(node, recordingEffects(null).effects);
  const snapshot = {
    metadata: { index: 4, term: 1, confState: node.stateMachine.appliedConfState() },
    data: node.stateMachine.snapshotData(),
  };
  node.storage.compact(snapshot);
  const restarted = SimNode.start(2, MemoryStorage.fromDurableImage(node.storage.durableImage()), {
    tuning: TUNING,
    random: () => 0.5,
  });
  assert.equal(restarted.stateMachine.appliedIndex(), 4);
  assert.equal(restarted.stateMachine.clusterId(), node.stateMachine.clusterId());
  assert.equal(restarted.core.hasReady(), false, "nothing is applied twice");
});
