/**
 * `ReadIndexQueue`: the leader's side of ReadIndex (Raft thesis §6.4). A read records the
 * commit index and a read context; it is released once a majority of voters has answered
 * a heartbeat carrying that context (or a later one), which proves this node was still
 * the leader after the read arrived.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { quorumValue } from "./quorum.ts";
import type { NodeId } from "./types.ts";

/** A read request waiting for leadership to be confirmed. */
export interface PendingRead {
  requestId: number;
  /** The node that asked: the leader itself or a follower that forwarded it. */
  from: NodeId;
  /** The commit index when the read arrived: the read may be served once this is applied. */
  index: number;
  /** The heartbeat round that confirms it. */
  context: number;
}

/** A read that arrived before the leader committed an entry of its term. */
export interface DeferredRead {
  requestId: number;
  from: NodeId;
}

/** Reads waiting on the leader, bounded by `maxPendingReads`. */
export class ReadIndexQueue {
  readonly #maxPendingReads: number;
  #pending: PendingRead[] = [];
  #deferred: DeferredRead[] = [];
  /** Highest read context each voter has echoed. */
  readonly #acknowledged = new Map<NodeId, number>();
  #lastContext = 0;

  /** Holds at most `maxPendingReads` reads (pending plus deferred). */
  constructor(maxPendingReads: number) {
    assert(maxPendingReads >= 1, "maxPendingReads >= 1", { detail: () => `${maxPendingReads}` });
    this.#maxPendingReads = maxPendingReads;
  }

  /** True when no more reads can be accepted. */
  full(): boolean {
    return this.#pending.length + this.#deferred.length >= this.#maxPendingReads;
  }

  /** The context of the latest heartbeat round that reads wait for, or 0 when none wait. */
  get awaitedContext(): number {
    return this.#pending.length === 0 ? 0 : this.#lastContext;
  }

  /** Keeps a read until the leader has committed an entry of its term. */
  defer(read: DeferredRead): void {
    assert(!this.full(), "pending reads within their limit", {
      detail: () => `${this.#maxPendingReads}`,
    });
    this.#deferred.push(read);
  }

  /** Takes the deferred reads out, in arrival order. */
  takeDeferred(): DeferredRead[] {
    const deferred = this.#deferred;
    this.#deferred = [];
    return deferred;
  }

  /** Records a read of `index`; the returned context must reach a majority in a heartbeat round. */
  add(read: DeferredRead, index: number): number {
    assert(
      this.#pending.length < this.#maxPendingReads,
      "pending reads within their limit",
      { detail: () => `${this.#maxPendingReads}` },
    );
    this.#lastContext += 1;
    this.#pending.push({
      requestId: read.requestId,
      from: read.from,
      index,
      context: this.#lastContext,
    });
    return this.#lastContext;
  }

  /** `nodeId` answered the heartbeat round `context`. */
  acknowledge(nodeId: NodeId, context: number): void {
    if (context > (this.#acknowledged.get(nodeId) ?? 0)) this.#acknowledged.set(nodeId, context);
  }

  /**
   * Takes out the reads confirmed by a majority of `voters` (`self` confirms every round it
   * started), in the order they arrived.
   */
  release(voters: readonly NodeId[], self: NodeId): PendingRead[] {
    if (this.#pending.length === 0) return [];
    const confirmed = quorumValue(
      voters,
      (nodeId) => nodeId === self ? this.#lastContext : this.#acknowledged.get(nodeId) ?? 0,
    );
    let count = 0;
    while (count < this.#pending.length && this.#pending[count]!.context <= confirmed) count += 1;
    if (count === 0) return [];
    const released = this.#pending.slice(0, count);
    this.#pending = this.#pending.slice(count);
    return released;
  }

  /** Drops every read (leadership lost: the requesters retry elsewhere). */
  clear(): void {
    this.#pending = [];
    this.#deferred = [];
    this.#acknowledged.clear();
  }
}
