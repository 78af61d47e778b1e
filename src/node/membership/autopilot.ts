/**
 * The autopilot's promotion policy (DESIGN.md section 6, the way Consul's autopilot works):
 * which learner a leader promotes to voter, without an operator step. A pure function of
 * the leader's Raft status, so that the node (`MembershipManager`) and the simulator
 * (`tests/sim/membership_operator.ts`) run the same policy.
 *
 * @module
 */

import type { RaftStatus } from "../../raft/raft_core.ts";
import type { NodeId } from "../../raft/types.ts";

/** A learner is promoted once its log is within this many entries of the leader's commit index. */
export const PROMOTION_LAG_ENTRIES_MAX = 64;

/**
 * The learner to promote now: one that is recently active, replicating (not probing or
 * waiting for a snapshot) and within `PROMOTION_LAG_ENTRIES_MAX` of the commit index, so
 * that as a voter it can acknowledge new entries at once. `null` when there is none or
 * `status` is not a leader's.
 */
export function learnerToPromote(status: RaftStatus): NodeId | null {
  if (status.role !== "leader") return null;
  const learner = status.progress.find((peer) =>
    peer.isLearner && peer.recentActive && peer.state === "replicate" &&
    peer.matchIndex + PROMOTION_LAG_ENTRIES_MAX >= status.commit
  );
  return learner?.nodeId ?? null;
}
