/**
 * `SimNode`: one running simulated node, that is a `RaftCore` over a `MemoryStorage` and a
 * `KvStateMachine` over a `MemoryStateStore`. Only the storage survives a crash; a restarted
 * node rebuilds its state machine from the storage's snapshot and lets the core re-deliver
 * the committed entries after it, as the real node does after losing its process.
 *
 * @module
 */

import { type RaftConfig, RaftCore } from "../../src/raft/raft_core.ts";
import type { NodeId } from "../../src/raft/types.ts";
import { KvStateMachine } from "../../src/state_machine/kv_state_machine.ts";
import { encodeMemberInfo, type MemberInfo } from "../../src/state_machine/member_info.ts";
import { foundingLog } from "../../src/state_machine/founding.ts";
import { MemoryStateStore } from "../../src/state_machine/memory_state_store.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";

/** The core's settings the simulator varies per run. */
export type RaftTuning = Pick<
  RaftConfig,
  | "electionTicks"
  | "heartbeatTicks"
  | "maxInflightMessages"
  | "maxMessageBytes"
  | "maxUncommittedBytes"
  | "preVote"
  | "checkQuorum"
>;

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
  // The same founding log the node writes (src/state_machine/founding.ts).
  const { entries, hardState } = foundingLog(simMemberInfo(founder), SIM_CLUSTER_ID);
  return new MemoryStorage({
    hardState,
    snapshot: {
      metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
      data: new Uint8Array(),
    },
    entries,
  });
}

/** The member record of a simulated node (its P2P identity is made up). */
function simMemberInfo(nodeId: NodeId): MemberInfo {
  return {
    nodeId,
    p2pNodeId: `sim-p2p-${nodeId}`,
    addresses: [`127.0.0.1:${7000 + nodeId}`],
    relayUrl: null,
  };
}

/** The member record a simulated node joins with, encoded as an `addLearner` context. */
export function memberContext(nodeId: NodeId): Uint8Array {
  return encodeMemberInfo(simMemberInfo(nodeId));
}
