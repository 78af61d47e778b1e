/**
 * `runSimulation`: one deterministic simulation run. A cluster grows from its founder while
 * clients read and write, faults strike, members come and go, and logs are compacted; the
 * safety properties are checked after every unit of time. Then faults stop, the cluster
 * must settle (a leader, every member caught up, every client answered), every key is read
 * once more, state machine images are compared, and the whole client history is checked
 * for linearizability. Any failure is raised as a `SimulationFailure` carrying the seed
 * and the trace of the events that led to it.
 *
 * @module
 */

import { HistoryRecorder } from "./history_recorder.ts";
import { checkLinearizability, type LinearizabilityResult } from "./linearizability.ts";
import { SimOperator } from "./sim_operator.ts";
import { settleMicrotasks } from "./sim_clock.ts";
import { FaultInjector, type FaultStatistics } from "./fault_injector.ts";
import type { Scenario } from "./scenario.ts";
import { type ClusterListener, digest, SimCluster } from "./sim_cluster.ts";
import { SimClients } from "./sim_clients.ts";
import type { NetworkStatistics } from "./sim_network.ts";
import type { RpcStatistics } from "./sim_rpc.ts";
import { founderStorage } from "./sim_node.ts";
import { SimRandom } from "./sim_random.ts";
import { Trace } from "./trace.ts";

/** What a run did, for reports and tests. */
export interface SimulationReport {
  seed: number;
  /** Units of simulated time run, settling included. */
  steps: number;
  /** Client operations given to the linearizability checker. */
  operationsChecked: number;
  operations: { completed: number; pending: number; discarded: number };
  /** `linearizable`, or `unknown` when the checker's budget ran out (never `notLinearizable`: that throws). */
  linearizability: "linearizable" | "unknown";
  faults: FaultStatistics;
  membershipChanges: { addLearner: number; promoteLearner: number; removeNode: number };
  /**
   * Removed nodes that stopped: on applying their removal, told by their removal watch, or
   * after leaving (`cluster.leave` answered).
   */
  removedNodes: { applied: number; watch: number; left: number };
  /** `blixard/rpc/1` calls: joins (first-hand and forwarded), the watch's status requests. */
  rpc: RpcStatistics;
  /** `cluster.join` requests the joiners sent; the rest of `rpc.joinCalls` were forwarded. */
  joinRequests: number;
  /** The production joiners' failed seed attempts, retried attempts, and failed joins. */
  joiners: { seedAttemptsFailed: number; retried: number; failed: number };
  /** Raft messages a node's transport refused (the sender no member in its view). */
  raftMessagesRefused: number;
  /** Voters that left by `cluster.leave`, answered. */
  leaves: number;
  leadershipTransfers: number;
  /** Terms in which some node was leader. */
  termsWithLeader: number;
  compactions: number;
  snapshotsInstalled: number;
  /** Snapshot transfers broken between two chunks. */
  snapshotTransfersBroken: number;
  network: NetworkStatistics;
  /** The highest commit index any node reached. */
  committedIndexMax: number;
}

/** What kind of failure a run ran into. */
export type FailureKind = "safety" | "linearizability" | "liveness" | "invariant" | "error";

/** A failed run: its seed, what failed, and the last events before it. */
export class SimulationFailure extends Error {
  override name = "SimulationFailure";
  readonly seed: number;
  readonly kind: FailureKind;
  /** Simulated time of the failure. */
  readonly time: number;
  readonly trace: string[];

  constructor(
    options: {
      seed: number;
      kind: FailureKind;
      time: number;
      trace: string[];
      message: string;
      cause?: unknown;
    },
  ) {
    super(
      `seed ${options.seed}, time ${options.time}: ${options.kind} failure: ${options.message}`,
      { cause: options.cause },
    );
    this.seed = options.seed;
    this.kind = options.kind;
    this.time = options.time;
    this.trace = options.trace;
  }
}

/** Events kept for the failure trace. */
export const TRACE_CAPACITY = 400;

/**
 * Runs `scenario` to the end; rejects with `SimulationFailure` at the first failure. Async
 * only so that the production policy's promises settle between units of time (see
 * `sim_clock.ts`); nothing waits on real time.
 */
export async function runSimulation(
  scenario: Scenario,
  options: { followTrace?: (line: string) => void } = {},
): Promise<SimulationReport> {
  const run = new Run(scenario, new Trace(TRACE_CAPACITY, options.followTrace));
  try {
    return await run.execute();
  } catch (error) {
    throw run.failure(error);
  }
}

class LivenessFailure extends Error {}
class LinearizabilityFailure extends Error {}

/** The pieces of one run, wired together. */
class Run {
  readonly #scenario: Scenario;
  readonly #trace: Trace;
  readonly #recorder = new HistoryRecorder(500_000);
  readonly #random: SimRandom;
  readonly #cluster: SimCluster;
  readonly #clients: SimClients;
  readonly #operator: SimOperator;
  readonly #faults: FaultInjector;
  #compactions = 0;

  constructor(scenario: Scenario, trace: Trace) {
    this.#scenario = scenario;
    this.#trace = trace;
    this.#random = new SimRandom(scenario.seed);
    const listener: ClusterListener = {
      applied: (nodeId, entry, result) => {
        this.#clients.applied(nodeId, entry, result);
        this.#operator.applied(nodeId, entry);
      },
      readStates: (nodeId, readStates) => this.#clients.readStates(nodeId, readStates),
      joining: (nodeId) => this.#operator.joining(nodeId),
    };
    this.#cluster = new SimCluster({
      random: this.#random,
      trace: this.#trace,
      tuning: scenario.tuning,
      networkFaults: scenario.network,
      tickInterval: scenario.tickInterval,
      inFlightMax: 100_000,
      listener,
      amnesia: scenario.sabotage === "amnesia",
      earlyVotes: scenario.sabotage === "earlyVotes",
      policy: { votersMax: scenario.operator.votersMax },
    });
    const random = this.#random;
    this.#clients = new SimClients(this.#cluster, {
      random,
      recorder: this.#recorder,
      clients: { ...scenario.clients, staleReads: scenario.sabotage === "staleReads" },
    });
    this.#operator = new SimOperator(this.#cluster, {
      random,
      operator: scenario.operator,
      firstFreeId: 2,
    });
    this.#faults = new FaultInjector(this.#cluster, { random, faults: scenario.faults });
    this.#cluster.addNode(1, founderStorage(1));
  }

  async execute(): Promise<SimulationReport> {
    for (let step = 0; step < this.#scenario.steps; step++) await this.#step();
    await this.#settle();
    this.#clients.readEveryKey();
    await this.#runUntil(
      () => !this.#clients.finalReadsPending,
      "the final reads of every key did not complete",
    );
    this.#checkFinalState();
    const history = this.#recorder.history();
    const verdict = checkLinearizability(history);
    if (verdict.type === "notLinearizable") throw new LinearizabilityFailure(verdict.explanation);
    return this.#report(history.length, verdict);
  }

  failure(error: unknown): SimulationFailure {
    const kind: FailureKind = error instanceof LinearizabilityFailure
      ? "linearizability"
      : error instanceof LivenessFailure
      ? "liveness"
      : error instanceof Error && error.name === "SafetyViolation"
      ? "safety"
      : error instanceof Error && error.name === "InvariantViolation"
      ? "invariant"
      : "error";
    const message = error instanceof Error ? error.message : String(error);
    return new SimulationFailure({
      seed: this.#scenario.seed,
      kind,
      time: this.#cluster.now,
      trace: this.#trace.lines(),
      message,
      cause: error,
    });
  }

  /** One unit of time, then the continuations of the policy's promises it enabled. */
  async #step(): Promise<void> {
    const cluster = this.#cluster;
    cluster.beginStep();
    this.#faults.step();
    this.#operator.step();
    this.#clients.step();
    for (const node of cluster.liveNodes()) {
      if (
        this.#random.chance(this.#scenario.compactionProbability) &&
        cluster.compact(node.id, this.#scenario.compactionEntries)
      ) {
        this.#compactions += 1;
      }
    }
    cluster.endStep();
    this.#clients.serveReads();
    await settleMicrotasks();
  }

  /** Faults stop and churn ends; the cluster must then reach a quiet, caught-up state. */
  async #settle(): Promise<void> {
    this.#faults.stop();
    this.#cluster.disarmCrashes();
    this.#cluster.network.setFaults({
      ...this.#cluster.network.faults,
      dropProbability: 0,
      duplicateProbability: 0,
      stragglerProbability: 0,
    });
    this.#operator.stopChurn();
    this.#clients.stopIssuing();
    await this.#runUntil(
      () => this.#clients.idle() && this.#operator.settled() && this.#caughtUp(),
      "the cluster did not settle",
    );
  }

  /**
   * Runs until `done`, which must come: the cluster fails liveness when it makes no progress
   * (no entry applied anywhere, no operation completed) for `stallStepsMax` units, or is
   * still not done after `settleStepsMax` units. Slow progress, such as a learner catching
   * up through tiny messages, is not a failure; standing still is. A running join counts as
   * standing still only from its timeout on: one that can only fail (its seeds are down, or
   * removed and unaware of it) ends by then, as on real machines.
   */
  async #runUntil(done: () => boolean, what: string): Promise<void> {
    const { stallStepsMax, settleStepsMax } = this.#scenario;
    let lastProgress = this.#progress();
    let stalledSince = this.#cluster.now;
    for (
      let step = 0;
      step < settleStepsMax &&
      this.#cluster.now - Math.max(stalledSince, this.#operator.joinsEndBy()) < stallStepsMax;
      step++
    ) {
      if (done()) return;
      await this.#step();
      const progress = this.#progress();
      if (progress !== lastProgress) {
        lastProgress = progress;
        stalledSince = this.#cluster.now;
      }
    }
    if (done()) return;
    const nodes = this.#cluster.liveNodes().map((node) => {
      const status = node.core.status();
      return `${node.id}:${status.role}/t${status.term} commit ${status.commit} applied ${node.stateMachine.appliedIndex()} last ${status.lastIndex}`;
    });
    const stalled = this.#cluster.now - stalledSince;
    throw new LivenessFailure(
      `${what}: no progress for ${stalled} units after faults stopped (${nodes.join("; ")})`,
    );
  }

  /** Grows whenever any node applies an entry or any operation completes. */
  #progress(): number {
    let applied = 0;
    for (const node of this.#cluster.liveNodes()) applied += node.stateMachine.appliedIndex();
    return applied + this.#recorder.counts().completed;
  }

  /** A leader exists, and every member has applied everything in the leader's log. */
  #caughtUp(): boolean {
    const leader = this.#cluster.leader();
    if (leader === undefined) return false;
    const status = leader.core.status();
    if (status.commit !== status.lastIndex) return false;
    const members = [...status.confState.voters, ...status.confState.learners];
    return members.every((id) =>
      this.#cluster.live(id)?.stateMachine.appliedIndex() === status.commit
    );
  }

  /** Every member holds the same state, and every acknowledged write is still committed. */
  #checkFinalState(): void {
    const checker = this.#cluster.checker;
    for (const node of this.#cluster.liveNodes()) {
      checker.observeStateImage(
        node.id,
        node.stateMachine.appliedIndex(),
        digest(node.stateMachine.snapshotData()),
      );
    }
    for (const entry of this.#clients.acknowledged) {
      checker.observeAcknowledged(entry.index, entry.term, entry);
    }
  }

  #report(operationsChecked: number, verdict: LinearizabilityResult): SimulationReport {
    return {
      seed: this.#scenario.seed,
      steps: this.#cluster.now,
      operationsChecked,
      operations: this.#recorder.counts(),
      linearizability: verdict.type === "linearizable" ? "linearizable" : "unknown",
      faults: this.#faults.statistics,
      membershipChanges: this.#operator.committed,
      removedNodes: this.#cluster.removedNodes,
      rpc: this.#cluster.rpc.statistics,
      joinRequests: this.#operator.joinRequests,
      joiners: this.#operator.joiners,
      leaves: this.#operator.leaves,
      raftMessagesRefused: this.#cluster.raftMessagesRefused,
      leadershipTransfers: this.#operator.transfers,
      termsWithLeader: this.#cluster.checker.termsWithLeader,
      compactions: this.#compactions,
      snapshotsInstalled: this.#cluster.snapshotsInstalled,
      snapshotTransfersBroken: this.#cluster.snapshotTransfersBroken,
      network: this.#cluster.network.statistics,
      committedIndexMax: this.#cluster.checker.committedIndexMax,
    };
  }
}
