/**
 * `MembershipOperator`: changes the simulated cluster's membership the way DESIGN.md
 * section 6 says the real cluster does, while clients keep writing. It grows the cluster
 * from its founder (add learner, then promote it when the node's own autopilot policy,
 * `learnerToPromote`, picks it, up to the voter cap),
 * in a join storm adds machines without waiting for the previous one's promotion, so that
 * learners pile up beyond the cap, and, when churn is on, removes members (the leader included) and adds new machines with
 * fresh ids, so "remove, then re-add with a fresh id" happens again and again. A removed
 * member's machine stops once its removal is committed. It also moves leadership around.
 *
 * @module
 */

import { learnerToPromote } from "../../src/node/membership/autopilot.ts";
import { assert } from "../../src/util/assert.ts";
import type { Entry, MembershipChange, NodeId } from "../../src/raft/types.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import type { SimCluster } from "./sim_cluster.ts";
import { memberContext, type SimNode } from "./sim_node.ts";
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
  /** Chance of removing a member when no change is under way. */
  removeProbability: number;
  /** Chance of asking the leader to hand over leadership. */
  transferProbability: number;
  /** How long a proposed change may take before the operator looks again. */
  changeTimeout: number;
}

interface ChangeInFlight {
  change: MembershipChange;
  index: number;
  term: number;
  deadline: number;
}

/** Drives membership changes and leadership transfers. */
export class MembershipOperator {
  readonly #cluster: SimCluster;
  readonly #random: SimRandom;
  readonly #options: OperatorOptions;
  #nextNodeId: NodeId;
  #inFlight: ChangeInFlight | null = null;
  #churn = true;
  /** Changes that committed, by type, for the report. */
  readonly committed = { addLearner: 0, promoteLearner: 0, removeNode: 0 };
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
  }

  /** Stops removals and transfers; growth to the target and promotions go on. */
  stopChurn(): void {
    this.#churn = false;
  }

  /** True when no change is under way and every learner has been promoted. */
  settled(): boolean {
    const leader = this.#cluster.leader();
    if (this.#inFlight !== null || leader === undefined) return false;
    const conf = leader.core.status().confState;
    return conf.learners.length === this.#options.learnersTarget &&
      conf.voters.length >= this.#options.votersTarget;
  }

  /** One unit of time: maybe propose a change or a transfer. */
  step(): void {
    const leader = this.#cluster.leader();
    if (leader === undefined) return;
    const voters = leader.core.status().confState.voters.length;
    assert(voters <= this.#options.votersMax, "the voter cap holds", {
      detail: () => `leader ${leader.id} has ${voters} voters, cap ${this.#options.votersMax}`,
    });
    if (this.#churn && this.#random.chance(this.#options.transferProbability)) {
      this.#transfer(leader);
    }
    const inFlight = this.#inFlight;
    if (inFlight !== null && this.#cluster.now < inFlight.deadline) return;
    if (inFlight !== null) this.#giveUp(leader, inFlight);
    const change = this.#nextChange(leader);
    if (change !== null) this.#propose(leader, change);
  }

  /** A node applied `entry`: a committed change ends the wait, and a removed member stops. */
  applied(entry: Entry): void {
    if (entry.type !== "membership") return;
    const inFlight = this.#inFlight;
    if (inFlight !== null && inFlight.index === entry.index && inFlight.term === entry.term) {
      this.#inFlight = null;
      this.committed[entry.change.type] += 1;
    }
    if (entry.change.type === "removeNode" && this.#cluster.exists(entry.change.nodeId)) {
      this.#cluster.destroy(entry.change.nodeId, `its removal committed at ${entry.index}`);
    }
  }

  #nextChange(leader: SimNode): MembershipChange | null {
    const status = leader.core.status();
    const conf = status.confState;
    const caughtUp = learnerToPromote(status, { votersMax: this.#options.votersMax });
    if (caughtUp !== null) return { type: "promoteLearner", nodeId: caughtUp };
    // A learner whose machine was stopped (its addition looked lost, then survived) can never catch up.
    const stranded = conf.learners.find((id) => !this.#cluster.exists(id));
    if (stranded !== undefined) return { type: "removeNode", nodeId: stranded };
    if (conf.learners.length > 0 && !this.#options.storm) return null;
    const members = conf.voters.length + conf.learners.length;
    if (members < this.#options.votersTarget + this.#options.learnersTarget) {
      const nodeId = this.#nextNodeId++;
      this.#cluster.addNode(nodeId, new MemoryStorage());
      return { type: "addLearner", nodeId, context: memberContext(nodeId) };
    }
    if (
      this.#churn && conf.voters.length > this.#options.votersMin &&
      this.#random.chance(this.#options.removeProbability)
    ) {
      return { type: "removeNode", nodeId: this.#random.pick(conf.voters) };
    }
    return null;
  }

  #propose(leader: SimNode, change: MembershipChange): void {
    const proposed = leader.core.proposeMembership(change);
    const name = `${change.type}(${change.nodeId})`;
    if (!proposed.ok) {
      this.#cluster.trace(`operator: ${name} refused by ${leader.id}: ${proposed.reason.type}`);
      // A machine made for a refused addition is not a member: stop it, the next attempt gets a fresh id.
      if (change.type === "addLearner") {
        this.#cluster.destroy(change.nodeId, "its addition was refused");
      }
      return;
    }
    this.#inFlight = {
      change,
      index: proposed.index,
      term: proposed.term,
      deadline: this.#cluster.now + this.#options.changeTimeout,
    };
    this.#cluster.trace(
      `operator: ${name} proposed to ${leader.id} at ${proposed.index} term ${proposed.term}`,
    );
  }

  /** A change that did not commit in time: a machine made for a lost addition is stopped. */
  #giveUp(leader: SimNode, inFlight: ChangeInFlight): void {
    this.#inFlight = null;
    const change = inFlight.change;
    this.#cluster.trace(
      `operator: ${change.type}(${change.nodeId}) at ${inFlight.index} did not commit in time`,
    );
    const conf = leader.core.status().confState;
    if (
      change.type === "addLearner" && !conf.learners.includes(change.nodeId) &&
      !conf.voters.includes(change.nodeId)
    ) {
      this.#cluster.destroy(change.nodeId, "its addition did not commit");
    }
  }

  #transfer(leader: SimNode): void {
    const voters = leader.core.status().confState.voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const to = this.#random.pick(voters);
    if (leader.core.transferLeadership(to).ok) {
      this.transfers += 1;
      this.#cluster.trace(`operator: leadership transfer ${leader.id} → ${to}`);
    }
  }
}
