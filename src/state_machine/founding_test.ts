import assert from "node:assert/strict";
import { confStateAfter, emptyConfState } from "../raft/membership.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import { MemoryStateStore } from "./memory_state_store.ts";
import { foundingLog } from "./founding.ts";

const founder = {
  nodeId: 3,
  p2pNodeId: "a".repeat(64),
  addresses: ["127.0.0.1:7003"],
  relayUrl: null,
};

Deno.test("foundingLog() makes the founder the only voter, with its record and the cluster id", () => {
  const { entries, hardState } = foundingLog(founder, "cluster-x");
  assert.deepEqual(hardState, { term: 1, vote: 0, commit: 3 });
  assert.deepEqual(entries.map((entry) => [entry.index, entry.term]), [[1, 1], [2, 1], [3, 1]]);
  assert.deepEqual(confStateAfter(emptyConfState(), entries), { voters: [3], learners: [] });

  const stateMachine = new KvStateMachine(new MemoryStateStore());
  for (const entry of entries) stateMachine.apply(entry);
  assert.equal(stateMachine.clusterId(), "cluster-x");
  assert.deepEqual(stateMachine.members(), [{ nodeId: 3, role: "voter", info: founder }]);
  assert.equal(stateMachine.appliedIndex(), 3);
});
