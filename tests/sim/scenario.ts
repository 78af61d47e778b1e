/**
 * `Scenario`: everything a simulation run is made of, derived from its seed and a profile,
 * so that `--seed N` alone replays a run. Profiles focus the faults: `calm` has none,
 * `crashes`, `partitions`, `lossy` and `membership` stress one family each, `stragglers`
 * adds messages that arrive many election timeouts late to crashes, churn and loss, `storm`
 * starts machines beyond the voter cap at once, while crashes hit, so that learners pile up
 * and are promoted up to the cap only (the rest stay learners), and `mixed` (the default) draws every family's rate from the seed, so that a range of seeds
 * covers quiet runs, hostile runs and everything between.
 *
 * @module
 */

import type { ClientOptions } from "./sim_clients.ts";
import { type FaultOptions, NO_FAULTS } from "./fault_injector.ts";
import type { OperatorOptions } from "./sim_operator.ts";
import type { NetworkFaults } from "./sim_network.ts";
import type { RaftTuning } from "./sim_node.ts";
import { SimRandom } from "./sim_random.ts";

/** The fault profiles a run can take. */
export const PROFILES = [
  "mixed",
  "calm",
  "crashes",
  "partitions",
  "lossy",
  "membership",
  "stragglers",
  "storm",
] as const;

/** One of `PROFILES`. */
export type Profile = typeof PROFILES[number];

/**
 * Deliberate faults outside Raft's model, to show that the checks catch their effects:
 * `amnesia` (a restarted node loses its last persisted entries and its vote),
 * `staleReads` (reads skip ReadIndex) and `earlyVotes` (a follower's vote leaves before its
 * fsync). `none` for every real run.
 */
export const SABOTAGES = ["none", "amnesia", "staleReads", "earlyVotes"] as const;

/** One of `SABOTAGES`. */
export type Sabotage = typeof SABOTAGES[number];

/** A complete description of one simulation run. */
export interface Scenario {
  seed: number;
  profile: Profile;
  /** Voters the cluster grows to from its founder. */
  nodes: number;
  /** Units of simulated time with clients, faults and churn, before the cluster is left to settle. */
  steps: number;
  /** Units the cluster gets to settle (and then to serve the final reads) once faults stop. */
  settleStepsMax: number;
  /** Units without any progress after which a settling cluster fails liveness. */
  stallStepsMax: number;
  /** Units between two ticks of a node. */
  tickInterval: number;
  tuning: RaftTuning;
  network: NetworkFaults;
  faults: FaultOptions;
  operator: OperatorOptions;
  clients: ClientOptions;
  /** A node compacts its log once this many applied entries are behind its snapshot. */
  compactionEntries: number;
  /** Chance per node and unit of time of considering compaction. */
  compactionProbability: number;
  sabotage: Sabotage;
}

/** What a caller may fix; the rest comes from the seed. */
export interface ScenarioChoices {
  profile?: Profile;
  sabotage?: Sabotage;
  nodes?: number;
  steps?: number;
}

/** The default length of a run, in units of simulated time (10 units per tick). */
export const STEPS_DEFAULT = 3000;

/** The scenario of `seed`: the same seed and choices always give the same scenario. */
export function scenarioFor(seed: number, choices: ScenarioChoices = {}): Scenario {
  // A stream of its own, so that the scenario does not shift the run's random draws.
  const random = new SimRandom((seed ^ 0x5bd1e995) >>> 0);
  const profile = choices.profile ?? "mixed";
  const nodes = choices.nodes ?? random.pick([3, 3, 5]);
  if (!Number.isSafeInteger(nodes) || nodes < 1 || nodes > 9) {
    throw new RangeError(`--nodes ${nodes}: must be 1..9`);
  }
  const tickInterval = 10;
  const electionTicks = 10;
  const electionUnits = electionTicks * tickInterval;
  const scenario: Scenario = {
    seed,
    profile,
    nodes,
    steps: choices.steps ?? STEPS_DEFAULT,
    settleStepsMax: 200 * electionUnits,
    stallStepsMax: 60 * electionUnits,
    tickInterval,
    tuning: {
      electionTicks,
      heartbeatTicks: random.integer(1, 3),
      maxInflightMessages: random.pick([2, 8, 64]),
      maxMessageBytes: random.pick([256, 4096, 65536]),
      maxUncommittedBytes: random.pick([2048, 1 << 20]),
      // Always on, as on every node (`RaftNode`): without it a node whose stale
      // configuration cannot elect it still raises its term at every timeout, and can keep
      // the one node that could win from being elected (docs/decisions.md, seed 9518).
      preVote: true,
      // Always on, as on every node (`RaftNode`), like pre-vote.
      checkQuorum: true,
    },
    network: {
      dropProbability: 0,
      duplicateProbability: 0,
      delayMin: 1,
      delayMax: random.integer(2, 20),
    },
    faults: NO_FAULTS,
    operator: {
      votersTarget: nodes,
      votersMax: nodes,
      learnersTarget: 0,
      storm: false,
      votersMin: Math.max(1, nodes - 1),
      removeProbability: 0,
      transferProbability: 0,
      changeTimeout: 6 * electionUnits,
    },
    clients: {
      clients: random.integer(2, 5),
      keys: random.integer(1, 4),
      thinkTimeMax: random.integer(0, 40),
      attemptTimeout: 3 * electionUnits,
      // Short deadlines leave operations with unknown outcomes for the checker to reason about.
      operationTimeout: random.pick([2, 4, 12]) * electionUnits,
    },
    compactionEntries: random.pick([10, 50, 200]),
    compactionProbability: 0.02,
    sabotage: choices.sabotage ?? "none",
  };
  return applyProfile(scenario, random);
}

function applyProfile(scenario: Scenario, random: SimRandom): Scenario {
  const electionUnits = scenario.tuning.electionTicks * scenario.tickInterval;
  const lossy = (): NetworkFaults => ({
    ...scenario.network,
    dropProbability: random.pick([0.01, 0.05, 0.15]),
    duplicateProbability: random.pick([0, 0.02, 0.1]),
    delayMax: random.integer(5, 40),
  });
  const crashes = (): FaultOptions => ({
    ...scenario.faults,
    crashProbability: 1 / random.integer(100, 800),
    crashedMax: random.integer(1, scenario.nodes),
    restartDelayMin: 10,
    restartDelayMax: random.integer(1, 8) * electionUnits,
  });
  const partitions = (faults: FaultOptions): FaultOptions => ({
    ...faults,
    partitionProbability: 1 / random.integer(200, 1000),
    partitionDurationMin: electionUnits / 2,
    partitionDurationMax: random.integer(2, 10) * electionUnits,
  });
  const churn = (operator: OperatorOptions): OperatorOptions => ({
    ...operator,
    removeProbability: 1 / random.integer(150, 800),
    transferProbability: 1 / random.integer(200, 1000),
  });
  switch (scenario.profile) {
    case "calm":
      return scenario;
    case "crashes":
      return { ...scenario, faults: crashes() };
    case "partitions":
      return { ...scenario, faults: partitions(scenario.faults) };
    case "lossy":
      return { ...scenario, network: lossy() };
    case "stragglers": {
      // A few messages arrive many election timeouts late, after leaders and terms changed.
      const network = {
        ...lossy(),
        stragglerProbability: 0.01,
        stragglerDelayMax: 30 * electionUnits,
      };
      return { ...scenario, network, operator: churn(scenario.operator), faults: crashes() };
    }
    case "membership":
      return { ...scenario, operator: churn(scenario.operator) };
    case "storm": {
      // The cap is the voters the run grows to; the machines beyond it must stay learners.
      const operator = { ...scenario.operator, storm: true, learnersTarget: random.integer(2, 6) };
      return { ...scenario, operator, faults: crashes() };
    }
    case "mixed": {
      // Each family is on for most seeds, so that seeds also differ in which faults meet.
      const network = random.chance(0.7) ? lossy() : scenario.network;
      const crashed = random.chance(0.7) ? crashes() : scenario.faults;
      const faults = random.chance(0.7) ? partitions(crashed) : crashed;
      const operator = random.chance(0.7) ? churn(scenario.operator) : scenario.operator;
      return { ...scenario, network, faults, operator };
    }
  }
}
