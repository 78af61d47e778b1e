/**
 * `Progress`: what a leader knows about one follower's log and how it replicates to it.
 *
 * - probe: the leader does not know where the follower's log matches; it sends one
 *   AppendEntries at a time and waits for the answer (or a heartbeat answer).
 * - replicate: the logs match up to `match`; the leader streams entries optimistically
 *   (advancing `next` on send) within the bounded `Inflights` window.
 * - snapshot: the follower needs entries that were compacted; the leader sent a snapshot
 *   and sends nothing else until the follower reports it installed (or it failed).
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { Inflights } from "./inflights.ts";

/** How the leader replicates to a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * The leader's view of one follower.
 * Invariant: `match < next`.
 */
export class Progress {
  /** The highest index known to match the leader's log. */
  match = 0;
  /** The index of the next entry to send. */
  next: number;
  state: ProgressState = "probe";
  /** In the snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** In the snapshot state: election timeouts the leader has waited for the outcome. */
  snapshotRounds = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** In the probe state: a message is out and the leader waits for its answer. */
  probeSent = false;
  isLearner: boolean;
  /** AppendEntries in flight in the replicate state. */
  readonly inflights: Inflights;

  /** A follower whose log is assumed to match up to `next - 1`, to be probed. */
  constructor(next: number, options: { maxInflightMessages: number; isLearner: boolean }) {
    this.next = next;
    this.isLearner = options.isLearner;
    this.inflights = new Inflights(options.maxInflightMessages);
  }

  /** Back to probing from after `match` (or after a snapshot just sent, which will most likely land). */
  becomeProbe(): void {
    const next = this.state === "snapshot"
      ? Math.max(this.match + 1, this.pendingSnapshot + 1)
      : this.match + 1;
    this.#reset("probe", next);
  }

  /** The logs match up to `match`: stream from there. */
  becomeReplicate(): void {
    this.#reset("replicate", this.match + 1);
  }

  /** A snapshot at `snapshotIndex` is on its way. */
  becomeSnapshot(snapshotIndex: number): void {
    this.#reset("snapshot", this.next);
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * The follower acknowledged its log matches up to `index`. Returns whether `match` moved.
   * A stale acknowledgement (below `match`) changes nothing.
   */
  maybeUpdate(index: number): boolean {
    const updated = this.match < index;
    if (updated) {
      this.match = index;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected the AppendEntries with `prevLogIndex === rejected`; `matchHint`
   * is the highest index that may still match (fast backtracking). Returns false for a
   * stale rejection that changes nothing.
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** True when the leader must not send AppendEntries to this follower now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /**
   * An AppendEntries was sent whose entries end at `lastIndex` (`count` of them). In
   * replicate, `next` moves on optimistically; in probe, wait for the answer.
   */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === "replicate") {
      if (count === 0) return;
      assert(
        lastIndex + 1 - count === this.next,
        "replicate sends continue at next",
        { detail: () => `sent [${lastIndex + 1 - count}, ${lastIndex}], next ${this.next}` },
      );
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex);
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  #reset(state: ProgressState, next: number): void {
    this.state = state;
    this.next = next;
    this.pendingSnapshot = 0;
    this.snapshotRounds = 0;
    this.probeSent = false;
    this.inflights.reset();
  }
}
