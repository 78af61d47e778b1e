/**
 * `SimOperator`: the people and machines around a simulated cluster, acting through the
 * production membership policy and the node's RPC service. Each node runs its own
 * `MembershipManager` and `ClusterService` (`SimNode`): the leader's autopilot promotes
 * caught-up learners up to the voter cap on its own. The operator
 *
 * - starts machines with fresh ids, each of which joins through the production joiner
 *   (`joinThrough` over `searchPeers`, `sim_joiner.ts`): it searches the nodes that
 *   existed when it started (`--peers`) for a seed by `/bootstrap` and `ping`, asks it for
 *   `cluster.status` and `cluster.join` (a follower forwards it to the leader), asks again
 *   on the same seed after `busy`, retries anything else not final through a new search
 *   after its backoff, and gives up after the join timeout. It grows the cluster to its
 *   target one machine at a time, or, in a join storm, without waiting for the previous
 *   one's promotion, so that learners pile up beyond the cap;
 * - when churn is on, sends `cluster.remove` for a voter (the leader included, forced or
 *   not) to a running node, which forwards it to the leader, or has the voter leave by
 *   itself (`cluster.leave` to it: `leaveCluster`, then the node stops); and has the leader
 *   hand leadership over (`handOverLeadership`, as a stopping leader does).
 *
 * A removed member's machine stops by itself (`SimNode`): when it applies its own removal,
 * or when its `RemovalWatch` finds out from the others' `cluster.status`.
 *
 * @module
 */

import type { BootstrapEvent } from "../../src/bootstrap/bootstrap_client.ts";
import { joinThrough, searchPeers } from "../../src/node/join/joiner.ts";
import { committedConfState, joinUnfinished } from "../../src/node/local_state/unfinished_join.ts";
import { handOverLeadership } from "../../src/node/membership/handover.ts";
import { isMember } from "../../src/raft/membership.ts";
import type { Entry, NodeId } from "../../src/raft/types.ts";
import { LEAVE_RPC, REMOVE_RPC } from "../../src/transport/cluster_rpcs.ts";
import { RpcError } from "../../src/transport/rpc.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import { assert } from "../../src/util/assert.ts";
import { abortReason } from "../../src/util/sleep.ts";
import { MS_PER_UNIT, type ScopedScheduler } from "./sim_clock.ts";
import type { SimCluster } from "./sim_cluster.ts";
import { simMemberInfo, type SimNode, simNodeIdOf } from "./sim_node.ts";
import { simSeedLink, simSeedReach } from "./sim_joiner.ts";
import { OPERATOR_ID } from "./sim_rpc.ts";
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
  /** Machines started that are not learners yet, each with the signal that ends its join. */
  readonly #joining = new Map<NodeId, AbortController>();
  /** When each running join gives up (simulated units): its start plus the join timeout. */
  readonly #joinDeadlines = new Map<NodeId, number>();
  /** Restarted incarnations that joined again. */
  readonly #rejoined = new WeakSet<SimNode>();
  /** Each machine's `--peers`, fixed when it first started. */
  readonly #peers = new Map<NodeId, string[]>();
  #removing = false;
  #handingOver = false;
  #churn = true;
  /** Membership entries applied, by (index, term), so that each counts once. */
  readonly #seen = new Set<string>();
  /** Changes that committed, by type, for the report. */
  readonly committed = { addLearner: 0, promoteLearner: 0, removeNode: 0 };
  /** Nodes that left by `cluster.leave`, answered. */
  leaves = 0;
  /** Handovers a leader started. */
  transfers = 0;
  /** `cluster.join` requests the joiners sent (their seeds forward some). */
  joinRequests = 0;
  /**
   * What the production joiners went through: seed-search attempts at a peer that failed
   * (down, cut off), join attempts that failed and were retried, joins that failed for good.
   */
  readonly joiners = { seedAttemptsFailed: 0, retried: 0, failed: 0 };

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

  /** True while machine `nodeId`'s join runs. */
  joining(nodeId: NodeId): boolean {
    return this.#joining.has(nodeId);
  }

  /**
   * The simulated time (in units) by which every join running now has ended, answered or
   * given up after its join timeout; 0 when none runs. A join that can only fail (its seeds
   * are down, or removed and unaware of it) takes its whole timeout, as on real machines.
   */
  joinsEndBy(): number {
    let endBy = 0;
    for (const nodeId of this.#joining.keys()) {
      endBy = Math.max(endBy, this.#joinDeadlines.get(nodeId) ?? 0);
    }
    return endBy;
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
    this.#endJoinsOfMembers();
    this.#rejoinUnfinishedJoins();
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
      const voter = this.#random.pick(conf.voters);
      if (this.#random.chance(LEAVE_SHARE)) void this.#leave(voter);
      else void this.#remove(voter, this.#random.chance(0.5));
    }
  }

  /**
   * Node `nodeId` applied `entry`: committed changes are counted, and a machine whose own
   * log adds it ends its join, answered or not, as `ClusterMember` ends it.
   */
  applied(nodeId: NodeId, entry: Entry): void {
    if (entry.type !== "membership") return;
    if (entry.change.nodeId === nodeId && entry.change.type !== "removeNode") {
      this.#joining.get(nodeId)?.abort(new Error(`the log added node ${nodeId} at ${entry.index}`));
    }
    const key = `${entry.index}/${entry.term}`;
    if (!this.#seen.has(key)) {
      this.#seen.add(key);
      this.committed[entry.change.type] += 1;
    }
  }

  /**
   * A machine whose applied configuration names it ends its join, as `ClusterMember` ends it
   * after a Ready: its addition may have come inside a snapshot, with no entry to apply.
   */
  #endJoinsOfMembers(): void {
    for (const [nodeId, join] of this.#joining) {
      const node = this.#cluster.live(nodeId);
      if (node === undefined || !isMember(node.stateMachine.appliedConfState(), nodeId)) continue;
      join.abort(new Error(`node ${nodeId}'s applied configuration names it`));
    }
  }

  /**
   * A machine that restarted while the committed part of its log did not name it yet (it
   * crashed before it caught up to its own addition, or its addition was never committed)
   * joins again, as the node decides at start (`joinUnfinished`): its
   * new process knows only the members its partial log names, and its transport refuses a
   * leader that is none of them until a seed names it.
   */
  #rejoinUnfinishedJoins(): void {
    for (const node of this.#cluster.liveNodes()) {
      if (!node.restarted || this.#rejoined.has(node) || this.#joining.has(node.id)) continue;
      const self = simMemberInfo(node.id);
      const committed = committedConfState(node.storage);
      if (!joinUnfinished(committed, self, (key) => node.stateMachine.isRevoked(key))) continue;
      this.#rejoined.add(node);
      this.#joining.set(node.id, new AbortController());
      this.#cluster.trace(
        `operator: node ${node.id} restarted before its log named it; joins again`,
      );
      void this.#join(node.id);
    }
  }

  /**
   * The `--peers` of machine `nodeId`: the nodes that existed (running or down) when it first
   * started, other than the machines still joining, as an operator lists the members.
   */
  #peersOf(nodeId: NodeId): string[] {
    let peers = this.#peers.get(nodeId);
    if (peers === undefined) {
      peers = this.#cluster.existingIds().filter((id) => id !== nodeId && !this.#joining.has(id))
        .map((id) => simMemberInfo(id).addresses[0]!);
      this.#peers.set(nodeId, peers);
    }
    return peers;
  }

  #startMachine(): NodeId {
    const nodeId = this.#nextNodeId++;
    this.#peersOf(nodeId);
    this.#cluster.addNode(nodeId, new MemoryStorage());
    this.#joining.set(nodeId, new AbortController());
    return nodeId;
  }

  /**
   * The joiner of machine `nodeId`: the production join over the production seed search,
   * on the simulated network, with its `--peers`. A join that fails stops the machine, unless its log made it a member, as
   * `ClusterMember` stops the node.
   */
  async #join(nodeId: NodeId): Promise<void> {
    const self = simMemberInfo(nodeId);
    const { signal } = this.#joining.get(nodeId)!;
    this.#joinDeadlines.set(
      nodeId,
      Math.ceil((this.#scheduler.now() + SIM_JOIN_TIMEOUT_MS) / MS_PER_UNIT),
    );
    const peers = this.#peersOf(nodeId);
    const random = () => this.#random.float();
    const reach = simSeedReach(
      this.#cluster.rpc.client({ nodeId, p2pNodeId: self.p2pNodeId }),
      {
        scheduler: this.#scheduler,
        peerAddress: (peer) => simMemberInfo(simNodeIdOf(peer)),
        onJoinCall: () => this.joinRequests += 1,
      },
    );
    try {
      const joined = await joinThrough({
        self,
        // The machine's directory, across its restarts.
        directory: {
          rememberProvisional: (infos) =>
            this.#cluster.live(nodeId)?.directory.rememberProvisional(infos),
        },
        progress: { advance: () => {}, failed: () => this.joiners.retried += 1 },
        joinTimeoutMs: SIM_JOIN_TIMEOUT_MS,
        clusterSecret: null,
        signal,
        scheduler: this.#scheduler,
        random,
        connect: async (info, peer, options) =>
          simSeedLink(await reach.connect(info, peer, options)),
      }, async (remainingMs) => {
        const options = {
          peers,
          clusterSecret: null,
          signal,
          random,
          onBootstrapEvent: (event: BootstrapEvent) => {
            if (event.reason !== null) this.joiners.seedAttemptsFailed += 1;
          },
        };
        return simSeedLink(await searchPeers(options, remainingMs, reach));
      });
      this.#cluster.trace(
        `operator: node ${nodeId} joined through ${joined.peer} (leader ${joined.leaderId})`,
      );
    } catch (error) {
      if (signal.aborted) {
        this.#cluster.trace(`operator: join of ${nodeId} ends: ${abortReason(signal).message}`);
        return;
      }
      this.joiners.failed += 1;
      this.#cluster.trace(`operator: join of ${nodeId} failed: ${describe(error)}`);
      const status = this.#cluster.live(nodeId)?.core.status();
      if (status === undefined || !isMember(status.confState, nodeId)) {
        this.#cluster.destroy(nodeId, "its join failed");
      }
    } finally {
      this.#joining.delete(nodeId);
      this.#joinDeadlines.delete(nodeId);
    }
  }

  /** A running node other than `self` and the machines still joining, as `--peers` names one. */
  #seed(self: NodeId): NodeId | undefined {
    const candidates = this.#cluster.liveNodes().filter((node) =>
      node.id !== self && !this.#joining.has(node.id)
    );
    return candidates.length === 0 ? undefined : this.#random.pick(candidates).id;
  }

  /** `cluster.remove` of `nodeId`, as `blixard cluster remove` sends it to a running node. */
  async #remove(nodeId: NodeId, force: boolean): Promise<void> {
    const via = this.#seed(OPERATOR_ID);
    if (via === undefined) return;
    this.#removing = true;
    const rpc = this.#cluster.rpc.client({ nodeId: OPERATOR_ID, p2pNodeId: OPERATOR_P2P_ID });
    try {
      const { index } = await rpc.call(simMemberInfo(via), REMOVE_RPC, { nodeId, force }, {
        timeoutMs: this.#options.changeTimeout * MS_PER_UNIT,
      });
      this.#cluster.trace(`operator: node ${nodeId} removed through ${via} at ${index}`);
    } catch (error) {
      this.#cluster.trace(
        `operator: removal of ${nodeId}${force ? " (forced)" : ""} via ${via}: ${describe(error)}`,
      );
    } finally {
      this.#removing = false;
    }
  }

  /** `cluster.leave`, as `blixard cluster leave` sends it to the node that leaves. */
  async #leave(nodeId: NodeId): Promise<void> {
    if (this.#cluster.live(nodeId) === undefined) return;
    this.#removing = true;
    const rpc = this.#cluster.rpc.client({ nodeId: OPERATOR_ID, p2pNodeId: OPERATOR_P2P_ID });
    try {
      const { index } = await rpc.call(simMemberInfo(nodeId), LEAVE_RPC, {}, {
        timeoutMs: this.#options.changeTimeout * MS_PER_UNIT,
      });
      this.leaves += 1;
      this.#cluster.trace(`operator: node ${nodeId} left at ${index}`);
    } catch (error) {
      this.#cluster.trace(`operator: node ${nodeId} did not leave: ${describe(error)}`);
    } finally {
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
}

/** Of the members the churn takes out, the share that leave by themselves (`cluster.leave`). */
const LEAVE_SHARE = 0.3;

/** `--join-timeout`'s default (30 s, `DEFAULT_JOIN_TIMEOUT_MS`): 15,000 units of time. */
const SIM_JOIN_TIMEOUT_MS = 30_000;

/** The operator's own key: not a member's, so a follower forwards what it sends. */
const OPERATOR_P2P_ID = "operator";

function describe(error: unknown): string {
  return error instanceof RpcError ? error.message : String(error);
}
