/**
 * `SimOperator`: the people and machines around a simulated cluster, acting through the
 * production membership policy. Each node runs its own `MembershipManager` (`SimNode`):
 * the leader's autopilot promotes caught-up learners up to the voter cap on its own. The
 * operator
 *
 * - starts machines with fresh ids, each of which asks the current leader's manager to
 *   `join` until it is a learner, pausing between attempts as the joiner does
 *   (`busyPauseMs`: the leader's `retryAfterMs` when it is busy, else the joiner's backoff);
 *   it grows the cluster to its target one machine at a time, or, in a join storm, without
 *   waiting for the previous one's promotion, so that learners pile up beyond the cap;
 * - when churn is on, asks the leader's manager to `remove` a voter (the leader included,
 *   forced or not), and has the leader hand leadership over (`handOverLeadership`, as a
 *   stopping leader does).
 *
 * A removed member's machine stops once its removal is committed anywhere: the stand-in for
 * the node applying its own removal, or its `RemovalWatch` finding out (the watch's status
 * requests are not simulated). The join request reaches the leader's manager directly: the
 * RPC that carries it, and its forwarding by a follower, are not simulated either.
 *
 * @module
 */

import { busyPauseMs } from "../../src/node/join/join_pause.ts";
import { handOverLeadership } from "../../src/node/membership/handover.ts";
import { ClusterError } from "../../src/node/replication/cluster_error.ts";
import { withDeadline } from "../../src/node/replication/proposal_tracker.ts";
import type { Entry, NodeId } from "../../src/raft/types.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import { assert } from "../../src/util/assert.ts";
import { timeoutSignal } from "../../src/util/scheduler.ts";
import { sleepOn } from "../../src/util/sleep.ts";
import { MS_PER_UNIT, type ScopedScheduler } from "./sim_clock.ts";
import type { SimCluster } from "./sim_cluster.ts";
import { simMemberInfo, type SimNode } from "./sim_node.ts";
import type { SimRandom } from "./sim_random.ts";

/** How the operator behaves. Probabilities are per unit of simulated time. */
export interface OperatorOptions {
  /** Voters the cluster is grown to. */
  votersTarget: number;
  /** The autopilot's voter cap (`--max-voters`): no leader ever has more voters. */
  votersMax: number;
  /** Learners the cluster keeps beyond its voters once grown (nodes past the cap). */
  learnersTarget: number;
  /** Adds machines while learners wait to be promoted, as nodes started at once do. */
  storm: boolean;
  /** Voters below which nobody is removed. */
  votersMin: number;
  /** Chance of asking for the removal of a voter when no removal is under way. */
  removeProbability: number;
  /** Chance of asking the leader to hand over leadership. */
  transferProbability: number;
  /** Deadline, in units of simulated time, of one join or removal request. */
  changeTimeout: number;
}

/** Drives joins, removals and handovers through the nodes' membership managers. */
export class SimOperator {
  readonly #cluster: SimCluster;
  readonly #random: SimRandom;
  readonly #options: OperatorOptions;
  readonly #scheduler: ScopedScheduler;
  #nextNodeId: NodeId;
  /** Machines started that are not learners yet. */
  readonly #joining = new Set<NodeId>();
  #removing = false;
  #handingOver = false;
  #churn = true;
  /** Membership entries applied, by (index, term), so that each counts once. */
  readonly #seen = new Set<string>();
  /** Changes that committed, by type, for the report. */
  readonly committed = { addLearner: 0, promoteLearner: 0, removeNode: 0 };
  /** Handovers a leader started. */
  transfers = 0;

  /** `firstFreeId` is the lowest node id not used yet. */
  constructor(
    cluster: SimCluster,
    options: { random: SimRandom; operator: OperatorOptions; firstFreeId: NodeId },
  ) {
    this.#cluster = cluster;
    this.#random = options.random;
    this.#options = options.operator;
    this.#nextNodeId = options.firstFreeId;
    this.#scheduler = cluster.clock.scope();
  }

  /** Stops removals and handovers; growth to the target and promotions go on. */
  stopChurn(): void {
    this.#churn = false;
  }

  /**
   * True when nothing is under way, the cluster has grown to its voters, and every learner
   * left is held back by the voter cap alone. More learners than `learnersTarget` may stay:
   * a machine started while a removal looked certain (appended, then lost with its leader)
   * is added past the cap, and stays a learner, as it would in a real cluster.
   */
  settled(): boolean {
    const leader = this.#cluster.leader();
    if (leader === undefined || this.#joining.size > 0 || this.#removing) return false;
    const conf = leader.core.status().confState;
    return conf.voters.length >= this.#options.votersTarget &&
      conf.learners.length >= this.#options.learnersTarget &&
      (conf.learners.length === 0 || conf.voters.length >= this.#options.votersMax);
  }

  /** One unit of time: maybe start a machine, ask for a removal or a handover. */
  step(): void {
    const leader = this.#cluster.leader();
    if (leader === undefined) return;
    const conf = leader.core.status().confState;
    assert(conf.voters.length <= this.#options.votersMax, "the voter cap holds", {
      detail: () =>
        `leader ${leader.id} has ${conf.voters.length} voters, cap ${this.#options.votersMax}`,
    });
    if (
      this.#churn && !this.#handingOver && this.#random.chance(this.#options.transferProbability)
    ) {
      void this.#handOver(leader.id);
    }
    const members = conf.voters.length + conf.learners.length + this.#joining.size;
    const waiting = conf.learners.length + this.#joining.size > 0;
    if (
      members < this.#options.votersTarget + this.#options.learnersTarget &&
      (this.#options.storm || !waiting)
    ) {
      void this.#join(this.#startMachine());
    }
    if (
      this.#churn && !this.#removing && conf.voters.length > this.#options.votersMin &&
      this.#random.chance(this.#options.removeProbability)
    ) {
      void this.#remove(this.#random.pick(conf.voters), this.#random.chance(0.5));
    }
  }

  /** A node applied `entry`: committed changes are counted, and a removed member stops. */
  applied(entry: Entry): void {
    if (entry.type !== "membership") return;
    const key = `${entry.index}/${entry.term}`;
    if (!this.#seen.has(key)) {
      this.#seen.add(key);
      this.committed[entry.change.type] += 1;
    }
    if (entry.change.type === "removeNode" && this.#cluster.exists(entry.change.nodeId)) {
      this.#cluster.destroy(entry.change.nodeId, `its removal committed at ${entry.index}`);
    }
  }

  #startMachine(): NodeId {
    const nodeId = this.#nextNodeId++;
    this.#cluster.addNode(nodeId, new MemoryStorage());
    this.#joining.add(nodeId);
    return nodeId;
  }

  /** The joiner of machine `nodeId`: asks the leader until it is a learner, or the machine is gone. */
  async #join(nodeId: NodeId): Promise<void> {
    const member = simMemberInfo(nodeId);
    try {
      for (let attempt = 0; this.#cluster.exists(nodeId); attempt++) {
        const leader = this.#cluster.leader();
        let retryAfterMs: number | null = null;
        if (leader !== undefined) {
          const { signal, cancel } = this.#deadline();
          try {
            const { index } = await asked(
              leader,
              signal,
              () => leader.membership.join(member, signal),
            );
            this.#cluster.trace(`operator: node ${nodeId} joined through ${leader.id} at ${index}`);
            return;
          } catch (error) {
            this.#cluster.trace(`operator: join of ${nodeId} via ${leader.id}: ${describe(error)}`);
            if (error instanceof ClusterError && error.code === "busy") {
              retryAfterMs = error.retryAfterMs;
            }
          } finally {
            cancel();
          }
        }
        const durationMs = busyPauseMs(retryAfterMs, attempt, () => this.#random.float());
        await sleepOn(this.#scheduler, { durationMs });
      }
    } finally {
      this.#joining.delete(nodeId);
    }
  }

  async #remove(nodeId: NodeId, force: boolean): Promise<void> {
    const leader = this.#cluster.leader();
    if (leader === undefined) return;
    this.#removing = true;
    const { signal, cancel } = this.#deadline();
    try {
      const { index } = await asked(
        leader,
        signal,
        () => leader.membership.remove(nodeId, { force, signal }),
      );
      this.#cluster.trace(`operator: node ${nodeId} removed through ${leader.id} at ${index}`);
    } catch (error) {
      this.#cluster.trace(
        `operator: removal of ${nodeId}${force ? " (forced)" : ""} via ${leader.id}: ${
          describe(error)
        }`,
      );
    } finally {
      cancel();
      this.#removing = false;
    }
  }

  async #handOver(leaderId: NodeId): Promise<void> {
    const leader = this.#cluster.live(leaderId);
    if (leader === undefined) return;
    this.#handingOver = true;
    try {
      // The operator's clock, not the node's: a crash of the leader must not leave the wait hanging.
      const outcome = await handOverLeadership(leader.raft, {
        scheduler: this.#scheduler,
        signal: new AbortController().signal,
      });
      if (outcome !== "notLeader" && outcome !== "noCandidate" && outcome !== "refused") {
        this.transfers += 1;
      }
      this.#cluster.trace(`operator: handover by ${leaderId}: ${outcome}`);
    } finally {
      this.#handingOver = false;
    }
  }

  #deadline(): { signal: AbortSignal; cancel: () => void } {
    return timeoutSignal(this.#scheduler, this.#options.changeTimeout * MS_PER_UNIT);
  }
}

/**
 * A request to `node`'s manager as its caller sees it: the answer, or an error once the
 * caller's deadline passes or the node stops, whatever the manager still waits for. The
 * RPC that carries a request in production gives up the same ways (its deadline, its
 * connection closing with the process); without this, a caller would wait forever on a
 * crashed node whose queue holds a task sleeping on the node's stopped clock.
 */
function asked<T>(node: SimNode, signal: AbortSignal, request: () => Promise<T>): Promise<T> {
  const cut = AbortSignal.any([signal, node.stopped]);
  return withDeadline(
    request(),
    cut,
    () =>
      node.stopped.aborted
        ? new ClusterError("stopping", `node ${node.id} stopped before it answered`)
        : new ClusterError("timeout", "no answer before the deadline"),
  );
}

function describe(error: unknown): string {
  return error instanceof ClusterError ? `${error.code}: ${error.message}` : String(error);
}
