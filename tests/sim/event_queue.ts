/**
 * `EventQueue`: items scheduled at simulated times, taken out in time order. Items due at
 * the same time come out in the order they were scheduled, so a run is reproducible.
 *
 * @module
 */

interface Scheduled<T> {
  time: number;
  sequence: number;
  item: T;
}

/** A bounded min-heap of items ordered by (time, scheduling order). */
export class EventQueue<T> {
  readonly #heap: Scheduled<T>[] = [];
  readonly #sizeMax: number;
  #sequence = 0;

  /** `sizeMax` bounds the queue: scheduling beyond it is refused. */
  constructor(sizeMax: number) {
    if (!Number.isSafeInteger(sizeMax) || sizeMax < 1) {
      throw new RangeError(`EventQueue: sizeMax ${sizeMax} must be an integer >= 1`);
    }
    this.#sizeMax = sizeMax;
  }

  /** Items waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `item` at `time`; returns false (and drops it) when the queue is full. */
  push(time: number, item: T): boolean {
    if (!Number.isFinite(time)) throw new RangeError(`EventQueue.push: time ${time} is not finite`);
    if (this.#heap.length >= this.#sizeMax) return false;
    this.#heap.push({ time, sequence: this.#sequence++, item });
    this.#siftUp(this.#heap.length - 1);
    return true;
  }

  /** Removes and returns the earliest item due at or before `now`, or `undefined`. */
  popDue(now: number): T | undefined {
    const first = this.#heap[0];
    if (first === undefined || first.time > now) return undefined;
    const last = this.#heap.pop() as Scheduled<T>;
    if (this.#heap.length > 0) {
      this.#heap[0] = last;
      this.#siftDown(0);
    }
    return first.item;
  }

  /** Removes every item for which `predicate` holds; returns how many. */
  removeWhere(predicate: (item: T) => boolean): number {
    const kept = this.#heap.filter((scheduled) => !predicate(scheduled.item));
    const removed = this.#heap.length - kept.length;
    this.#heap.length = 0;
    for (const scheduled of kept) {
      this.#heap.push(scheduled);
      this.#siftUp(this.#heap.length - 1);
    }
    return removed;
  }

  #before(a: Scheduled<T>, b: Scheduled<T>): boolean {
    return a.time !== b.time ? a.time < b.time : a.sequence < b.sequence;
  }

  #siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.#before(this.#heap[index]!, this.#heap[parent]!)) return;
      this.#swap(index, parent);
      index = parent;
    }
  }

  #siftDown(start: number): void {
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < this.#heap.length && this.#before(this.#heap[left]!, this.#heap[smallest]!)) {
        smallest = left;
      }
      if (right < this.#heap.length && this.#before(this.#heap[right]!, this.#heap[smallest]!)) {
        smallest = right;
      }
      if (smallest === index) return;
      this.#swap(index, smallest);
      index = smallest;
    }
  }

  #swap(a: number, b: number): void {
    const item = this.#heap[a]!;
    this.#heap[a] = this.#heap[b]!;
    this.#heap[b] = item;
  }
}
