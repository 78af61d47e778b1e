/**
 * The autopilot's promotion policy (DESIGN.md section 6, the way Consul's autopilot works):
 * which learner a leader promotes to voter, without an operator step, and why the others
 * stay learners. Pure functions of the leader's Raft status and the voter cap, so that the
 * node (`MembershipManager`, which the simulator runs too) and its `/status` give the same
 * answer.
 *
 * Voters are capped (`--max-voters`, 5 by default, the size etcd and Consul recommend):
 * each voter beyond that makes every write wait for one more acknowledgement and tolerates
 * no more failures than a cap of the same odd size. Nodes beyond the cap stay learners:
 * they replicate everything, serve reads through the leader, and stand by to be promoted
 * when a voter is removed.
 *
 * @module
 */

import type { ConfState, NodeId } from "../../raft/types.ts";
import type { PeerProgress, RaftStatus } from "../../raft/raft_core.ts";

/** A learner is promoted once its log is within this many entries of the leader's commit index. */
export const PROMOTION_LAG_ENTRIES_MAX = 64;

/** Default voter cap: 5 voters tolerate two failures, as etcd and Consul recommend. */
export const VOTERS_MAX_DEFAULT = 5;
/** Largest voter cap: each voter slows every write, and 7 already tolerate three failures. */
export const VOTERS_MAX_LIMIT = 9;

/** What the autopilot needs to know besides the Raft status. */
export interface PromotionPolicy {
  /** Voters the autopilot promotes up to; it never demotes or removes a voter. */
  votersMax: number;
  /**
   * Why the replicated state keeps learner `nodeId` a learner whatever its progress (it
   * joined by a learner invite: {@linkcode INVITED_AS_LEARNER}), or `null`. Absent: none is.
   */
  keptLearner?: (nodeId: NodeId) => string | null;
}

/** `learner_reason` of a member that joined by `blixard cluster invite --as learner`. */
export const INVITED_AS_LEARNER = "invited as learner (blixard cluster invite --as learner)";

/** The policy of a node started without `--max-voters`. */
export const PROMOTION_POLICY_DEFAULT: PromotionPolicy = { votersMax: VOTERS_MAX_DEFAULT };

/** What {@linkcode keptLearnerReason} reads of the applied replicated state. */
export interface AppliedMembers {
  appliedConfState(): ConfState;
  isInvitedLearner(nodeId: NodeId): boolean;
}

/**
 * `PromotionPolicy.keptLearner` answered from the applied state: a learner invited as one
 * stays a learner, and one whose adding entry is not applied yet here is not promoted
 * either (a new leader may hold it unapplied, and whether it was invited as a learner is
 * decided by that entry).
 */
export function keptLearnerReason(applied: AppliedMembers, nodeId: NodeId): string | null {
  if (!applied.appliedConfState().learners.includes(nodeId)) {
    return "joining: the entry that adds it is not applied yet";
  }
  return applied.isInvitedLearner(nodeId) ? INVITED_AS_LEARNER : null;
}

/**
 * The learner to promote now: one that is ready (see {@linkcode learnerHeldBack}) while the
 * configuration has fewer voters than the cap. `null` when there is none, the cap is
 * reached, or `status` is not a leader's.
 */
export function learnerToPromote(status: RaftStatus, policy: PromotionPolicy): NodeId | null {
  if (status.role !== "leader" || voterCapReached(status.confState, policy)) return null;
  const learner = status.progress.find((peer) =>
    peer.isLearner && policy.keptLearner?.(peer.nodeId) == null &&
    progressHoldBack(peer, status.commit) === null
  );
  return learner?.nodeId ?? null;
}

/**
 * Whether learner `peer` has finished joining as the learner it was invited to stay: it is
 * never promoted, so once it replicates within reach of the commit index its join is over
 * and `/status` stops listing it among the joins in flight.
 */
export function invitedLearnerSettled(
  peer: PeerProgress,
  commit: number,
  policy: PromotionPolicy,
): boolean {
  return policy.keptLearner?.(peer.nodeId) === INVITED_AS_LEARNER &&
    progressHoldBack(peer, commit) === null;
}

/**
 * Why the leader with `status` does not promote learner `nodeId` now, in a few words for
 * `/status`: the voter cap, or how the learner's replication stands. `null` when it is
 * ready to be promoted (it will be, at the autopilot's next look).
 */
export function learnerHeldBack(
  status: RaftStatus,
  nodeId: NodeId,
  policy: PromotionPolicy,
): string | null {
  const kept = policy.keptLearner?.(nodeId) ?? null;
  if (kept !== null) return kept;
  if (voterCapReached(status.confState, policy)) return voterCapReason(policy);
  const peer = status.progress.find((candidate) => candidate.nodeId === nodeId);
  if (peer === undefined) return "not replicated to yet";
  return progressHoldBack(peer, status.commit);
}

/**
 * Why a learner that sees configuration `conf` is a learner, as it can tell on its own: the
 * voter cap, if `conf` has reached it; otherwise it waits for the leader to find it caught up.
 * (`policy.keptLearner`, which the replicated state answers, comes before both.)
 */
export function learnerOwnReason(conf: ConfState, policy: PromotionPolicy): string {
  return voterCapReached(conf, policy)
    ? voterCapReason(policy)
    : "catching up: the leader promotes it once its log is within " +
      `${PROMOTION_LAG_ENTRIES_MAX} entries of the commit index`;
}

function voterCapReached(conf: ConfState, policy: PromotionPolicy): boolean {
  return conf.voters.length >= policy.votersMax;
}

function voterCapReason(policy: PromotionPolicy): string {
  return `voter cap ${policy.votersMax} reached (--max-voters)`;
}

/**
 * A learner is ready when it is recently active, replicating (not probing or waiting for a
 * snapshot) and within `PROMOTION_LAG_ENTRIES_MAX` of the commit index, so that as a voter
 * it can acknowledge new entries at once. Otherwise, what it lacks.
 */
function progressHoldBack(peer: PeerProgress, commit: number): string | null {
  if (!peer.recentActive) return "not heard from recently";
  if (peer.state !== "replicate") return `catching up (${peer.state})`;
  const lag = commit - peer.matchIndex;
  if (lag > PROMOTION_LAG_ENTRIES_MAX) return `catching up: ${lag} entries behind`;
  return null;
}
