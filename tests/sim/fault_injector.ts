/**
 * `FaultInjector`: crashes and restarts nodes, and cuts and heals the network, at random
 * under a seeded stream. Crashes strike either at once (between Readys) or at an armed
 * point inside the Ready loop, so that a process dies with a Ready half handled.
 * Partitions come in four shapes: a random split, the leader isolated, the leader deaf
 * (it sends but hears nothing), and the leader mute (it hears but cannot send).
 *
 * @module
 */

import type { NodeId } from "../../src/raft/types.ts";
import { CRASH_POINTS } from "../../src/node/replication/ready_driver.ts";
import type { SimCluster } from "./sim_cluster.ts";
import type { SimRandom } from "./sim_random.ts";

/** How often faults strike. Probabilities are per unit of simulated time; durations in units. */
export interface FaultOptions {
  crashProbability: number;
  /** Most nodes down at once. */
  crashedMax: number;
  restartDelayMin: number;
  restartDelayMax: number;
  partitionProbability: number;
  partitionDurationMin: number;
  partitionDurationMax: number;
}

/** No faults at all. */
export const NO_FAULTS: FaultOptions = {
  crashProbability: 0,
  crashedMax: 0,
  restartDelayMin: 1,
  restartDelayMax: 1,
  partitionProbability: 0,
  partitionDurationMin: 1,
  partitionDurationMax: 1,
};

/** Counts of faults injected, for the report. */
export interface FaultStatistics {
  crashes: number;
  restarts: number;
  partitions: number;
}

/** Injects crashes, restarts and partitions. */
export class FaultInjector {
  readonly #cluster: SimCluster;
  readonly #random: SimRandom;
  #options: FaultOptions;
  readonly #restartAt = new Map<NodeId, number>();
  #healAt: number | null = null;
  readonly statistics: FaultStatistics = { crashes: 0, restarts: 0, partitions: 0 };

  constructor(cluster: SimCluster, options: { random: SimRandom; faults: FaultOptions }) {
    this.#cluster = cluster;
    this.#random = options.random;
    this.#options = options.faults;
  }

  /** One unit of time: restart and heal what is due, then maybe strike. */
  step(): void {
    const now = this.#cluster.now;
    for (const id of this.#cluster.crashedIds()) {
      const restartAt = this.#restartAt.get(id);
      if (restartAt === undefined) {
        this.#restartAt.set(
          id,
          now + this.#random.integer(this.#options.restartDelayMin, this.#options.restartDelayMax),
        );
      } else if (now >= restartAt) {
        this.#restartAt.delete(id);
        this.#cluster.restart(id);
        this.statistics.restarts += 1;
      }
    }
    if (this.#healAt !== null && now >= this.#healAt) this.#heal();
    if (this.#random.chance(this.#options.crashProbability)) this.#crashOne();
    if (this.#healAt === null && this.#random.chance(this.#options.partitionProbability)) {
      this.#partition();
    }
  }

  /** Stops all faults: heals the network and restarts every crashed node. */
  stop(): void {
    this.#options = NO_FAULTS;
    this.#heal();
    for (const id of this.#cluster.crashedIds()) {
      this.#cluster.restart(id);
      this.statistics.restarts += 1;
    }
    this.#restartAt.clear();
  }

  #crashOne(): void {
    const live = this.#cluster.liveNodes();
    if (live.length === 0 || this.#cluster.crashedIds().length >= this.#options.crashedMax) return;
    const victim = this.#random.pick(live);
    const immediately = this.#random.chance(0.5);
    this.#cluster.crash(victim.id, immediately ? "now" : this.#random.pick(CRASH_POINTS));
    this.statistics.crashes += 1;
  }

  #partition(): void {
    const ids = this.#cluster.liveNodes().map((node) => node.id);
    if (ids.length < 2) return;
    const leader = this.#cluster.leader()?.id ?? this.#random.pick(ids);
    const others = ids.filter((id) => id !== leader);
    const shape = this.#random.integer(1, 4);
    const network = this.#cluster.network;
    let description: string;
    if (shape === 1) {
      const side = ids.filter(() => this.#random.chance(0.5));
      network.partition(side, ids.filter((id) => !side.includes(id)));
      description = `split [${side}] | [${ids.filter((id) => !side.includes(id))}]`;
    } else if (shape === 2) {
      network.partition([leader], others);
      description = `leader ${leader} isolated`;
    } else if (shape === 3) {
      network.partitionOneWay(others, [leader]);
      description = `leader ${leader} deaf (hears nobody)`;
    } else {
      network.partitionOneWay([leader], others);
      description = `leader ${leader} mute (reaches nobody)`;
    }
    this.statistics.partitions += 1;
    this.#healAt = this.#cluster.now +
      this.#random.integer(this.#options.partitionDurationMin, this.#options.partitionDurationMax);
    this.#cluster.trace(`faults: partition: ${description}`);
  }

  #heal(): void {
    if (this.#healAt === null) return;
    this.#healAt = null;
    this.#cluster.network.heal();
    this.#cluster.trace("faults: network healed");
  }
}
