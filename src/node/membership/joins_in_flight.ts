/**
 * `JoinsInFlight`: the leader's view of the joins it is serving, for `/status` `joins`
 * (DESIGN.md section 6): each node that asked to join and is not a voter yet, its phase
 * (`joining` while the change that adds it is not committed, then `learner`; a learner invited
 * to stay one leaves the list once caught up), since when,
 * and how far its log lags behind the leader's commit index (`lag`, in entries; `null`
 * before the leader has heard from it as a learner), and what keeps a learner from being
 * promoted (`learner_reason`: the voter cap, or how its replication stands).
 *
 * @module
 */

import type { PeerProgress, RaftStatus } from "../../raft/raft_core.ts";
import type { NodeId } from "../../raft/types.ts";
import { invitedLearnerSettled, learnerHeldBack, type PromotionPolicy } from "./autopilot.ts";

/** One join as the leader's `/status` lists it. */
export interface JoinInFlightJson {
  node_id: NodeId;
  phase: "joining" | "learner";
  /** When the phase began, ISO 8601. */
  since: string;
  /** Commit index minus the learner's match index; `null` while joining. */
  lag: number | null;
  /**
   * Why a learner is not promoted yet (`"voter cap 5 reached (--max-voters)"`, `"catching
   * up: 120 entries behind"`); `null` while joining, and for a learner about to be promoted.
   */
  learner_reason: string | null;
}

/** Most joins tracked: each is a node asking to join; the leader adds one at a time. */
const JOINS_TRACKED_MAX = 64;

/** The joins a leader is serving. */
export class JoinsInFlight {
  readonly #joins = new Map<NodeId, { phase: JoinInFlightJson["phase"]; since: Date }>();
  readonly #policy: PromotionPolicy;

  /** `policy` is the autopilot's, which `learner_reason` explains. */
  constructor(policy: PromotionPolicy) {
    this.#policy = policy;
  }

  /** Node `nodeId` asked to join (its change is not committed yet). */
  requested(nodeId: NodeId): void {
    if (this.#joins.has(nodeId) || this.#joins.size >= JOINS_TRACKED_MAX) return;
    this.#joins.set(nodeId, { phase: "joining", since: new Date() });
  }

  /** The change that adds `nodeId` committed: it is a learner now. */
  added(nodeId: NodeId): void {
    this.#joins.set(nodeId, { phase: "learner", since: new Date() });
  }

  /** The request of `nodeId` failed before it was added. */
  failed(nodeId: NodeId): void {
    if (this.#joins.get(nodeId)?.phase === "joining") this.#joins.delete(nodeId);
  }

  /**
   * The joins in flight as the leader with `raft` sees them; forgets the joins that ended
   * (promoted, removed). A follower lists none: only the leader tracks learners.
   */
  toJson(raft: RaftStatus | null): JoinInFlightJson[] {
    if (raft === null || raft.role !== "leader") return [];
    // A learner invited to stay one is listed until it has caught up, then its join is over.
    const learners = new Map<NodeId, PeerProgress>(
      raft.progress
        .filter((peer) => peer.isLearner && !invitedLearnerSettled(peer, raft.commit, this.#policy))
        .map((peer) => [peer.nodeId, peer]),
    );
    for (const [nodeId, join] of this.#joins) {
      if (join.phase === "learner" && !learners.has(nodeId)) this.#joins.delete(nodeId);
    }
    // A learner added under an earlier leader: tracked from now on.
    for (const nodeId of learners.keys()) {
      if (this.#joins.get(nodeId)?.phase !== "learner") this.added(nodeId);
    }
    return [...this.#joins].map(([nodeId, join]) => {
      const learner = learners.get(nodeId);
      return {
        node_id: nodeId,
        phase: join.phase,
        since: join.since.toISOString(),
        lag: learner === undefined ? null : Math.max(0, raft.commit - learner.matchIndex),
        learner_reason: learner === undefined ? null : learnerHeldBack(raft, nodeId, this.#policy),
      };
    }).sort((a, b) => a.node_id - b.node_id);
  }
}
