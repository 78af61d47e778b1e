/**
 * Leadership handover: a leader that stops or leaves first hands leadership to its most
 * up-to-date active voter and waits until it hears from the new leader, so that the
 * cluster has one before this node stops voting. `ClusterMember` runs it on stop and
 * leave; the simulator runs it on its nodes (`tests/sim/sim_membership.ts`).
 *
 * @module
 */

import type { RaftStatus } from "../../raft/raft_core.ts";
import { NO_NODE, type NodeId } from "../../raft/types.ts";
import { getLogger } from "../../log/logging.ts";
import { sleepOn } from "../../util/sleep.ts";
import type { Scheduler } from "../../util/scheduler.ts";
import type { MembershipRaft } from "./membership_raft.ts";

const log = getLogger(["blixard", "membership"]);

/** How long a stopping or leaving leader waits for its successor to take over. */
export const HANDOVER_TIMEOUT_MS = 2_000;
/** How often a handing-over leader looks whether the new leader was heard of. */
const HANDOVER_POLL_MS = 10;

/** How a handover ended. */
export type HandoverOutcome =
  | "notLeader"
  | "noCandidate"
  | "refused"
  | "handedOver"
  | "notTakenOver"
  | "noNewLeaderHeard";

/**
 * The voter a leader with `status` hands over to: the one with the highest match index
 * among the voters in `active` (heard from within an election timeout), or `null`.
 */
export function handoverTarget(status: RaftStatus, active: ReadonlySet<NodeId>): NodeId | null {
  const candidates = status.progress
    .filter((peer) => !peer.isLearner && peer.nodeId !== status.id && active.has(peer.nodeId))
    .sort((a, b) => b.matchIndex - a.matchIndex);
  return candidates[0]?.nodeId ?? null;
}

/**
 * If `raft` leads, transfers leadership to its {@linkcode handoverTarget} and waits until
 * it hears from the new leader, at most `HANDOVER_TIMEOUT_MS` of `scheduler`'s time or
 * until `signal` aborts. Never throws.
 */
export async function handOverLeadership(
  raft: MembershipRaft,
  options: { scheduler: Scheduler; signal: AbortSignal },
): Promise<HandoverOutcome> {
  if (raft.softState.role !== "leader") return "notLeader";
  // Voters heard from within an election timeout, not the core's recentActive: check-quorum
  // clears that flag every round, and a stop right after would hand over to nobody.
  const target = handoverTarget(raft.status(), raft.activePeers());
  if (target === null) return "noCandidate";
  try {
    raft.transferLeadership(target);
  } catch (error) {
    log.warn("could not hand leadership to node {nodeId}: {error}", { nodeId: target, error });
    return "refused";
  }
  log.info("handing leadership to node {nodeId}", { nodeId: target });
  // Stepping down is not enough: wait until this node hears from the new leader, so that
  // the cluster has one before this node stops (and stops voting).
  const newLeaderKnown = () =>
    raft.softState.role !== "leader" && raft.softState.leaderId !== NO_NODE;
  const { scheduler, signal } = options;
  const deadline = scheduler.now() + HANDOVER_TIMEOUT_MS;
  while (scheduler.now() < deadline && !newLeaderKnown() && !signal.aborted) {
    await sleepOn(scheduler, { durationMs: HANDOVER_POLL_MS, signal }).catch(() => {});
  }
  if (newLeaderKnown()) {
    log.info("node {leaderId} leads now", { leaderId: raft.softState.leaderId });
    return "handedOver";
  }
  if (raft.softState.role === "leader") {
    log.warn("leadership was not taken over within {ms} ms", { ms: HANDOVER_TIMEOUT_MS });
    return "notTakenOver";
  }
  log.warn("stepped down, but no new leader was heard of within {ms} ms", {
    ms: HANDOVER_TIMEOUT_MS,
  });
  return "noNewLeaderHeard";
}
