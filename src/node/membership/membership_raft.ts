/**
 * `MembershipRaft`: what the membership policy (the `MembershipManager`'s joins, removals
 * and autopilot, and the leader's handover) needs of the Raft node under it, and no more.
 * `RaftNode` is one; the simulator's nodes are another (`tests/sim/sim_raft.ts`), so that
 * the simulator runs the production policy on its own clock and network.
 *
 * @module
 */

import type { RaftStatus } from "../../raft/raft_core.ts";
import type { MembershipChange, NodeId, SoftState } from "../../raft/types.ts";
import type { ApplyResult } from "../../state_machine/apply_result.ts";

/** A Raft node as the membership policy sees it. */
export interface MembershipRaft {
  /** The core's state: configuration, progress of each peer, commit index. */
  status(): RaftStatus;
  /** The current role and leader. */
  readonly softState: SoftState;
  /** The peers heard from within the last election timeout. */
  activePeers(): Set<NodeId>;
  /**
   * Proposes a command (leader only); resolves with its result once applied here, rejects
   * with a `ClusterError` (`RaftNode.propose` lists the codes).
   */
  propose(data: Uint8Array, options?: { signal?: AbortSignal }): Promise<ApplyResult>;
  /** Proposes a membership change; resolves once applied here. Same errors as `propose`. */
  proposeMembership(
    change: MembershipChange,
    options?: { signal?: AbortSignal },
  ): Promise<ApplyResult>;
  /** Asks the leader (this node) to hand leadership to `to`; throws a `ClusterError` if refused. */
  transferLeadership(to: NodeId): void;
}
