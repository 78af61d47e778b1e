/**
 * `SimNode`: one running simulated node, that is a `RaftCore` over a `MemoryStorage` and a
 * `KvStateMachine` over a `MemoryStateStore`. Only the storage survives a crash; a restarted
 * node rebuilds its state machine from the storage's snapshot and lets the core re-deliver
 * the committed entries after it, as the real node does after losing its process.
 *
 * @module
 */

import { RaftCore } from "../../src/raft/raft_core.ts";
import type { Entry, NodeId } from "../../src/raft/types.ts";
import { encodeCommand } from "../../src/state_machine/commands.ts";
import { KvStateMachine } from "../../src/state_machine/kv_state_machine.ts";
import { encodeMemberInfo } from "../../src/state_machine/member_info.ts";
import { MemoryStateStore } from "../../src/state_machine/memory_state_store.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";

/** The core's settings the simulator varies per run. */
export interface RaftTuning {
  electionTicks: number;
  heartbeatTicks: number;
  maxInflightMessages: number;
  maxMessageBytes: number;
  maxUncommittedBytes: number;
  preVote: boolean;
  checkQuorum: boolean;
}

/** The cluster id every simulated cluster takes. */
export const SIM_CLUSTER_ID = "sim-cluster";

/** A running node: consensus, durable log, and state machine. */
export class SimNode {
  readonly id: NodeId;
  readonly core: RaftCore;
  readonly storage: MemoryStorage;
  readonly stateMachine: KvStateMachine;

  private constructor(
    id: NodeId,
    storage: MemoryStorage,
    core: RaftCore,
    stateMachine: KvStateMachine,
  ) {
    this.id = id;
    this.storage = storage;
    this.core = core;
    this.stateMachine = stateMachine;
  }

  /**
   * Starts node `id` from what `storage` durably holds: nothing (a node about to join), a
   * founder's log, or the state a crashed node left behind.
   */
  static start(
    id: NodeId,
    storage: MemoryStorage,
    options: { tuning: RaftTuning; random: () => number },
  ): SimNode {
    const stateMachine = new KvStateMachine(new MemoryStateStore());
    const snapshot = storage.snapshot();
    if (snapshot.metadata.index > 0) stateMachine.restore(snapshot);
    const core = new RaftCore({
      id,
      storage,
      applied: snapshot.metadata.index,
      ...options.tuning,
      random: options.random,
    });
    return new SimNode(id, storage, core, stateMachine);
  }
}

/**
 * The storage of a cluster's founding node: at term 1, index 1 adds it as a learner, index
 * 2 promotes it, index 3 names the cluster; all committed.
 */
export function founderStorage(founder: NodeId): MemoryStorage {
  const entries: Entry[] = [
    {
      type: "membership",
      term: 1,
      index: 1,
      change: { type: "addLearner", nodeId: founder, context: memberContext(founder) },
    },
    { type: "membership", term: 1, index: 2, change: { type: "promoteLearner", nodeId: founder } },
    {
      type: "normal",
      term: 1,
      index: 3,
      data: encodeCommand({ type: "initCluster", clusterId: SIM_CLUSTER_ID }),
    },
  ];
  return new MemoryStorage({
    hardState: { term: 1, vote: 0, commit: 3 },
    snapshot: {
      metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
      data: new Uint8Array(),
    },
    entries,
  });
}

/** The member record a simulated node joins with (its P2P identity is made up). */
export function memberContext(nodeId: NodeId): Uint8Array {
  return encodeMemberInfo({
    nodeId,
    p2pNodeId: `sim-p2p-${nodeId}`,
    addresses: [`127.0.0.1:${7000 + nodeId}`],
    relayUrl: null,
  });
}
