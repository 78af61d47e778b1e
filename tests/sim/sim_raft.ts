/**
 * `SimRaft`: a simulated node's `RaftCore` as the production membership policy and the
 * node's RPC service see a Raft node (`MembershipRaft` and `ServiceRaft`, which `RaftNode`
 * is in production). Proposals are answered
 * by the production `ProposalTracker` when the node applies their entries, and the peers
 * it counts as active are those the simulated network delivered a message from within an
 * election timeout of simulated time (`PeerActivity`), as `RaftNode` counts them.
 *
 * @module
 */

import type { RaftCore, RaftStatus } from "../../src/raft/raft_core.ts";
import type { Entry, MembershipChange, NodeId, SoftState } from "../../src/raft/types.ts";
import type { ApplyResult } from "../../src/state_machine/apply_result.ts";
import type { ServiceRaft } from "../../src/node/rpc/cluster_service.ts";
import type { RaftNodeEvents } from "../../src/node/replication/raft_node.ts";
import { ClusterError } from "../../src/node/replication/cluster_error.ts";
import {
  PeerActivity,
  ProposalTracker,
  rejection,
} from "../../src/node/replication/proposal_tracker.ts";
import type { Scheduler } from "../../src/util/scheduler.ts";

/** One simulated node's Raft, for the membership policy. */
export class SimRaft implements ServiceRaft {
  readonly #core: RaftCore;
  readonly #scheduler: Scheduler;
  readonly #schedule: () => void;
  readonly #proposals = new ProposalTracker();
  readonly #peers: PeerActivity;
  readonly #listeners: Pick<RaftNodeEvents, "softState">[] = [];
  #stopped = false;

  /**
   * `schedule` runs the node's Ready driver soon (after a proposal); `activeWindowMs` is
   * the election timeout on `scheduler`'s clock.
   */
  constructor(
    core: RaftCore,
    options: { scheduler: Scheduler; schedule: () => void; activeWindowMs: number },
  ) {
    this.#core = core;
    this.#scheduler = options.scheduler;
    this.#schedule = options.schedule;
    this.#peers = new PeerActivity(options.activeWindowMs);
  }

  status(): RaftStatus {
    return this.#core.status();
  }

  get softState(): SoftState {
    const status = this.#core.status();
    return { role: status.role, leaderId: status.leaderId };
  }

  activePeers(): Set<NodeId> {
    return this.#peers.active(this.#scheduler.now());
  }

  propose(data: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<ApplyResult> {
    return this.#track(() => this.#core.propose(data), options.signal);
  }

  proposeMembership(
    change: MembershipChange,
    options: { signal?: AbortSignal } = {},
  ): Promise<ApplyResult> {
    return this.#track(() => this.#core.proposeMembership(change), options.signal);
  }

  transferLeadership(to: NodeId): void {
    if (this.#stopped) throw stopping();
    const result = this.#core.transferLeadership(to);
    if (!result.ok) throw rejection(result.reason);
    this.#schedule();
  }

  /**
   * Reads are not served through the service in the simulator: its clients run ReadIndex
   * on the cores themselves (`sim_clients.ts`), so no read reaches here.
   */
  read<T>(_read: () => T): Promise<T> {
    return Promise.reject(new ClusterError("invalid", "the simulator serves no reads here"));
  }

  on(events: Pick<RaftNodeEvents, "softState">): void {
    this.#listeners.push(events);
  }

  /** The node's role or leader changed (a Ready carried a new soft state). */
  softStateChanged(softState: SoftState): void {
    for (const listener of this.#listeners) listener.softState?.(softState);
  }

  /** A message from `from` was delivered to this node. */
  heard(from: NodeId): void {
    this.#peers.heard(from, this.#scheduler.now());
  }

  /** The node applied `entry`. */
  applied(entry: Entry, result: ApplyResult): void {
    this.#proposals.answer(entry, result);
  }

  /** The node installed a snapshot up to `index`. */
  installed(index: number): void {
    this.#proposals.failThrough(index);
  }

  /** The node crashed or was stopped: whatever waits hears so. */
  stop(): void {
    this.#stopped = true;
    this.#proposals.failAll(stopping());
  }

  #track(
    propose: () => ReturnType<RaftCore["propose"]>,
    signal: AbortSignal | undefined,
  ): Promise<ApplyResult> {
    if (this.#stopped) return Promise.reject(stopping());
    const result = propose();
    const outcome = this.#proposals.track(result, signal);
    if (result.ok) this.#schedule();
    return outcome;
  }
}

function stopping(): ClusterError {
  return new ClusterError("stopping", "the node is stopping");
}
