/**
 * `ProposalTracker`: the promises of proposed entries, answered when the entries are
 * applied. `RaftNode` answers its callers with it, and the simulator's nodes answer the
 * production membership policy with it (`tests/sim/sim_raft.ts`), so that both learn a
 * proposal's outcome by the same rules.
 *
 * @module
 */

import type { Entry, ProposeResult, RejectReason } from "../../raft/types.ts";
import { NO_NODE } from "../../raft/types.ts";
import type { ApplyResult } from "../../state_machine/apply_result.ts";
import { ClusterError } from "./cluster_error.ts";

interface PendingProposal {
  term: number;
  resolve: (result: ApplyResult) => void;
  reject: (error: Error) => void;
}

/** Proposals waiting for their entry to be applied, by index. */
export class ProposalTracker {
  readonly #proposals = new Map<number, PendingProposal>();

  /**
   * A promise of the outcome of `result` (a core's answer to a proposal): rejected at once
   * with the core's refusal, else resolved with the entry's result once it is applied, or
   * rejected with `timeout` when `signal` aborts first (the outcome is then unknown).
   */
  track(result: ProposeResult, signal: AbortSignal | undefined): Promise<ApplyResult> {
    if (!result.ok) return Promise.reject(rejection(result.reason));
    const { promise, resolve, reject } = Promise.withResolvers<ApplyResult>();
    const index = result.index;
    this.#proposals.set(index, { term: result.term, resolve, reject });
    return withDeadline(promise, signal, () => {
      this.#proposals.delete(index);
      return new ClusterError(
        "timeout",
        `entry ${index} was not applied in time; it may still take effect`,
      );
    });
  }

  /** `entry` was applied with `result`: answers the proposal at its index, if any. */
  answer(entry: Entry, result: ApplyResult): void {
    const proposal = this.#proposals.get(entry.index);
    if (proposal === undefined) return;
    this.#proposals.delete(entry.index);
    if (proposal.term === entry.term) {
      proposal.resolve(result);
    } else {
      // Another leader's entry took this index: ours was truncated and never applied.
      proposal.reject(
        new ClusterError(
          "dropped",
          `leadership changed; entry ${entry.index} was replaced and did not take effect`,
        ),
      );
    }
  }

  /** A snapshot up to `index` was installed: the proposals it covers have unknown outcomes. */
  failThrough(index: number): void {
    for (const [proposalIndex, proposal] of this.#proposals) {
      if (proposalIndex > index) continue;
      this.#proposals.delete(proposalIndex);
      // A snapshot covers the index: whether our entry was in it cannot be told here.
      proposal.reject(
        new ClusterError(
          "timeout",
          `entry ${proposalIndex} was covered by a snapshot; outcome unknown`,
        ),
      );
    }
  }

  /** Rejects every waiting proposal with `error` (the node stops). */
  failAll(error: Error): void {
    for (const proposal of this.#proposals.values()) proposal.reject(error);
    this.#proposals.clear();
  }
}

/**
 * `promise`, or a rejection with `onTimeout()` as soon as `signal` aborts (at once when it
 * has already).
 */
export function withDeadline<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onTimeout: () => Error,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(onTimeout());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(onTimeout());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The `ClusterError` for a core refusal. */
export function rejection(reason: RejectReason): ClusterError {
  const leaderId = reason.leaderId === NO_NODE ? null : reason.leaderId;
  switch (reason.type) {
    case "notLeader":
      return leaderId === null
        ? new ClusterError("no_leader", "no leader is known; retry shortly")
        : new ClusterError("not_leader", `node ${leaderId} is the leader`, { leaderId });
    case "leadershipTransferInProgress":
      return new ClusterError("no_leader", "leadership is being transferred; retry shortly", {
        leaderId,
      });
    case "membershipChangeInProgress":
      return new ClusterError("busy", "another membership change is in progress", { leaderId });
    case "invalidMembershipChange":
      return new ClusterError("invalid", reason.detail, { leaderId });
    case "overloaded":
      return new ClusterError("overloaded", reason.detail, { leaderId });
    case "invalidRequest":
      return new ClusterError("invalid", reason.detail, { leaderId });
  }
}

/**
 * When each peer was last heard from, on an injected clock: the peers heard from within
 * the last election timeout are the ones a leader counts as reachable (quorum check of a
 * removal, handover target). The core's `recentActive` is not the same: check-quorum
 * clears it at the start of every round, so just after a round starts every live peer
 * looks inactive until its next answer arrives.
 */
export class PeerActivity {
  readonly #lastHeardMs = new Map<number, number>();
  readonly #windowMs: number;

  /** `windowMs`: how recently a peer must have been heard from to count as active. */
  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** A message from `nodeId` arrived at `nowMs`. */
  heard(nodeId: number, nowMs: number): void {
    this.#lastHeardMs.set(nodeId, nowMs);
  }

  /** The peers heard from within the window before `nowMs`. */
  active(nowMs: number): Set<number> {
    const sinceMs = nowMs - this.#windowMs;
    const active = new Set<number>();
    for (const [nodeId, heardMs] of this.#lastHeardMs) {
      if (heardMs >= sinceMs) active.add(nodeId);
    }
    return active;
  }
}
