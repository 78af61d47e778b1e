/**
 * `SimNetwork`: the simulated network between nodes. It drops, duplicates and delays
 * messages (random delays reorder them), and it partitions: a link blocked from one node to
 * another loses every message sent over it, including messages already in flight when the
 * link was cut. Messages are copied on send, as a real transport serializes them, so no two
 * nodes ever share an object.
 *
 * @module
 */

import { EventQueue } from "./event_queue.ts";
import type { SimRandom } from "./sim_random.ts";

/** What the network needs to know about a message: its endpoints. */
export interface Addressed {
  from: number;
  to: number;
}

/** How unreliable the network is. Probabilities are per message; delays in simulated time units. */
export interface NetworkFaults {
  dropProbability: number;
  duplicateProbability: number;
  delayMin: number;
  delayMax: number;
  /**
   * Chance that a message straggles: it arrives after `delayMax` and up to
   * `stragglerDelayMax`, long after messages sent later (a stale term, an old log).
   */
  stragglerProbability?: number;
  stragglerDelayMax?: number;
}

/** A network that loses nothing and delivers after a fixed delay. */
export const RELIABLE_NETWORK: NetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  delayMin: 1,
  delayMax: 1,
};

/** Counts of what happened to messages, for reports. */
export interface NetworkStatistics {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  blocked: number;
}

/** A lossy, reordering, partitionable network of `M` messages. */
export class SimNetwork<M extends Addressed> {
  readonly #random: SimRandom;
  readonly #inFlight: EventQueue<M>;
  readonly #blockedLinks = new Set<string>();
  #faults: NetworkFaults;
  readonly statistics: NetworkStatistics = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    blocked: 0,
  };

  /** `inFlightMax` bounds the messages in transit: beyond it sends are dropped, as a full queue would. */
  constructor(random: SimRandom, options: { faults: NetworkFaults; inFlightMax: number }) {
    this.#random = random;
    this.#faults = checkFaults(options.faults);
    this.#inFlight = new EventQueue(options.inFlightMax);
  }

  /** The current fault settings. */
  get faults(): NetworkFaults {
    return this.#faults;
  }

  /** Changes how unreliable the network is from now on. */
  setFaults(faults: NetworkFaults): void {
    this.#faults = checkFaults(faults);
  }

  /** Messages in transit. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Sends `message` at time `now`: it may be lost, duplicated, or delivered after a delay.
   * Returns what a sender could tell: `blocked` when the link is cut (a connection would
   * fail), otherwise `sent`, even when the message is silently lost on the way.
   */
  send(message: M, now: number): "sent" | "blocked" {
    this.statistics.sent += 1;
    if (this.isBlocked(message.from, message.to)) {
      this.statistics.blocked += 1;
      return "blocked";
    }
    if (this.#random.chance(this.#faults.dropProbability)) {
      this.statistics.dropped += 1;
      return "sent";
    }
    this.#schedule(message, now);
    if (this.#random.chance(this.#faults.duplicateProbability)) {
      this.statistics.duplicated += 1;
      this.#schedule(message, now);
    }
    return "sent";
  }

  /** Removes and returns the next message due by `now` over a link that is still up, or `undefined`. */
  deliverNext(now: number): M | undefined {
    for (
      let message = this.#inFlight.popDue(now);
      message !== undefined;
      message = this.#inFlight.popDue(now)
    ) {
      if (!this.isBlocked(message.from, message.to)) {
        this.statistics.delivered += 1;
        return message;
      }
      this.statistics.blocked += 1;
    }
    return undefined;
  }

  /** Drops every message in transit to or from `nodeId` (its process died, its sockets with it). */
  forget(nodeId: number): void {
    this.statistics.dropped += this.#inFlight.removeWhere((message) =>
      message.from === nodeId || message.to === nodeId
    );
  }

  /** Cuts the links between the two groups in both directions. */
  partition(groupA: readonly number[], groupB: readonly number[]): void {
    this.partitionOneWay(groupA, groupB);
    this.partitionOneWay(groupB, groupA);
  }

  /** Cuts the links from every node of `senders` to every node of `receivers`, leaving the reverse up. */
  partitionOneWay(senders: readonly number[], receivers: readonly number[]): void {
    for (const from of senders) {
      for (const to of receivers) if (from !== to) this.#blockedLinks.add(linkName(from, to));
    }
  }

  /** Restores every link. */
  heal(): void {
    this.#blockedLinks.clear();
  }

  /** True when messages from `from` to `to` are lost. */
  isBlocked(from: number, to: number): boolean {
    return this.#blockedLinks.has(linkName(from, to));
  }

  /** The blocked links, as `"from>to"` strings, for traces. */
  blockedLinks(): string[] {
    return [...this.#blockedLinks].sort();
  }

  #schedule(message: M, now: number): void {
    const { delayMin, delayMax, stragglerProbability, stragglerDelayMax } = this.#faults;
    const straggles = this.#random.chance(stragglerProbability ?? 0);
    const delay = straggles
      ? this.#random.integer(delayMax, stragglerDelayMax ?? delayMax)
      : this.#random.integer(delayMin, delayMax);
    if (!this.#inFlight.push(now + delay, structuredClone(message))) this.statistics.dropped += 1;
  }
}

function linkName(from: number, to: number): string {
  return `${from}>${to}`;
}

function checkFaults(faults: NetworkFaults): NetworkFaults {
  const probabilities = [
    faults.dropProbability,
    faults.duplicateProbability,
    faults.stragglerProbability ?? 0,
  ];
  if (probabilities.some((probability) => !(probability >= 0 && probability <= 1))) {
    throw new RangeError(`SimNetwork: probabilities must be in [0, 1]: ${JSON.stringify(faults)}`);
  }
  if (
    !Number.isSafeInteger(faults.delayMin) || faults.delayMin < 1 ||
    faults.delayMax < faults.delayMin ||
    (faults.stragglerDelayMax ?? faults.delayMax) < faults.delayMax
  ) {
    throw new RangeError(
      `SimNetwork: delays must be integers with 1 <= delayMin <= delayMax: ${
        JSON.stringify(faults)
      }`,
    );
  }
  return { ...faults };
}
