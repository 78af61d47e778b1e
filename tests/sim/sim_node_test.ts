import assert from "node:assert/strict";
import type { AppendEntries, Entry } from "../../src/raft/types.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import { founderStorage, memberContext, SimNode, type SimWiring } from "./sim_node.ts";
import { SimClock } from "./sim_clock.ts";
import { SimRpc } from "./sim_rpc.ts";
import { RELIABLE_NETWORK } from "./sim_network.ts";
import { SimRandom } from "./sim_random.ts";

const CLOCK = new SimClock(() => 0);

const WIRING: SimWiring = {
  tuning: {
    electionTicks: 10,
    heartbeatTicks: 1,
    maxInflightMessages: 8,
    maxMessageBytes: 1 << 16,
    maxUncommittedBytes: 1 << 20,
    preVote: true,
    checkQuorum: true,
  },
  random: () => 0.5,
  send: () => {},
  soon: (run) => run(),
  events: {},
  crashesAt: () => false,
  scheduler: CLOCK.scope(),
  activeWindowMs: 200,
  policy: { votersMax: 5 },
  rpc: new SimRpc({
    links: { isBlocked: () => false, faults: RELIABLE_NETWORK },
    random: new SimRandom(1),
    scheduler: CLOCK.scope(),
  }),
  restarted: false,
  joining: () => false,
  removed: () => {},
};

Deno.test("SimNode.start() rebuilds the state machine from the durable snapshot after a crash", () => {
  const founderLog = founderStorage(1).entries(1, 4, Infinity);
  const addition: Entry = {
    type: "membership",
    term: 1,
    index: 4,
    change: { type: "addLearner", nodeId: 2, context: memberContext(2) },
  };
  const node = SimNode.start(2, new MemoryStorage(), WIRING);
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
  node.driver.run();
  assert.equal(node.stateMachine.appliedIndex(), 4);
  const snapshot = {
    metadata: { index: 4, term: 1, confState: node.stateMachine.appliedConfState() },
    data: node.stateMachine.snapshotData(),
  };
  node.storage.compact(snapshot);
  const restarted = SimNode.start(
    2,
    MemoryStorage.fromDurableImage(node.storage.durableImage()),
    WIRING,
  );
  assert.equal(restarted.stateMachine.appliedIndex(), 4);
  assert.equal(restarted.stateMachine.clusterId(), node.stateMachine.clusterId());
  assert.equal(restarted.core.hasReady(), false, "nothing is applied twice");
});
