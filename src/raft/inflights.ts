/**
 * `Inflights`: the bounded window of AppendEntries a leader has sent to one follower in
 * the replicate state and not yet seen acknowledged. When it is full, the leader stops
 * sending to that follower until acknowledgements free slots: this is the flow control
 * that keeps a slow follower from queueing unbounded data in the transport.
 *
 * @module
 */

import { assert } from "../util/assert.ts";

/** A ring buffer of the last index carried by each in-flight AppendEntries, in increasing order. */
export class Inflights {
  readonly #capacity: number;
  readonly #lastIndexes: number[] = [];
  #start = 0;
  #count = 0;

  /** `capacity` is the most messages in flight at once (`maxInflightMessages`). */
  constructor(capacity: number) {
    assert(
      Number.isSafeInteger(capacity) && capacity >= 1,
      "inflight capacity >= 1",
      { detail: () => `${capacity}` },
    );
    this.#capacity = capacity;
  }

  /** Messages in flight. */
  get count(): number {
    return this.#count;
  }

  /** True when no more messages may be sent. */
  full(): boolean {
    return this.#count === this.#capacity;
  }

  /** Records a message whose last entry has index `lastIndex`. */
  add(lastIndex: number): void {
    assert(
      !this.full(),
      "no send when the inflight window is full",
      { detail: () => `capacity ${this.#capacity}` },
    );
    const position = (this.#start + this.#count) % this.#capacity;
    if (this.#count > 0) {
      const previous = this.#lastIndexes[(position + this.#capacity - 1) % this.#capacity]!;
      assert(
        lastIndex > previous,
        "inflight indexes increase",
        { detail: () => `${lastIndex} after ${previous}` },
      );
    }
    if (position === this.#lastIndexes.length) this.#lastIndexes.push(lastIndex);
    else this.#lastIndexes[position] = lastIndex;
    this.#count += 1;
  }

  /** Frees every message whose last index is at most `index` (the follower acknowledged it). */
  freeLE(index: number): void {
    while (this.#count > 0 && this.#lastIndexes[this.#start]! <= index) {
      this.#start = (this.#start + 1) % this.#capacity;
      this.#count -= 1;
    }
    if (this.#count === 0) this.#start = 0;
  }

  /** Frees the oldest message in flight (presumed lost), if any. */
  freeFirstOne(): void {
    const first = this.#lastIndexes[this.#start];
    if (this.#count > 0 && first !== undefined) this.freeLE(first);
  }

  /** Forgets every message in flight. */
  reset(): void {
    this.#start = 0;
    this.#count = 0;
  }
}
