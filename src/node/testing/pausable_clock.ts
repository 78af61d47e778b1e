/**
 * `PausableClock`: a `Scheduler` for tests of the node layer. It runs on the system clock
 * (so elections and replication happen by themselves) until `pause()`; from then on time
 * moves only through `advance(ms)`, which runs every interval that falls due, in order. A
 * test that asserts "nothing happened" pauses, advances by a known number of ticks, and so
 * checks that nothing happened in those ticks, however slow the machine. `soon` stays
 * `setImmediate`, so messages and Ready runs flow either way. Production code does not
 * import this.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Scheduler } from "../../util/scheduler.ts";

interface Interval {
  intervalMs: number;
  run: () => void;
  /** Clock time the interval next falls due while paused. */
  dueMs: number;
  cancelled: boolean;
  /** Runs once (`after`), then leaves the clock. */
  once: boolean;
  /** Clears its system timer. */
  clearTimer: () => void;
}

/** A clock that follows the system clock until paused, then moves only when told. */
export class PausableClock implements Scheduler {
  readonly #intervals = new Set<Interval>();
  /** Clock time minus `performance.now()` while running. */
  #offsetMs = 0;
  /** The frozen clock time while paused; `null` while running. */
  #pausedAtMs: number | null = null;

  /** The clock's time: the system clock's, shifted by the time spent paused and advanced. */
  now(): number {
    return this.#pausedAtMs ?? performance.now() + this.#offsetMs;
  }

  /** `setImmediate`, paused or not. */
  soon(run: () => void): void {
    setImmediate(run);
  }

  /** Every `intervalMs` of clock time: on a system timer while running, by `advance()` while paused. */
  every(intervalMs: number, run: () => void): () => void {
    const interval = this.#add(intervalMs, run, false);
    const timer = setInterval(() => {
      if (this.#pausedAtMs !== null) return;
      interval.dueMs = this.now() + intervalMs;
      run();
    }, intervalMs);
    interval.clearTimer = () => clearInterval(timer);
    return () => this.#remove(interval);
  }

  /**
   * Once, `delayMs` of clock time from now: on a system timer while running (and, when that
   * fires while paused, left to `advance()`), by `advance()` while paused.
   */
  after(delayMs: number, run: () => void): () => void {
    const timeout = this.#add(delayMs, run, true);
    const timer = setTimeout(() => {
      if (this.#pausedAtMs !== null || !this.#intervals.has(timeout)) return;
      this.#intervals.delete(timeout);
      run();
    }, delayMs);
    timeout.clearTimer = () => clearTimeout(timer);
    return () => this.#remove(timeout);
  }

  #add(intervalMs: number, run: () => void, once: boolean): Interval {
    const interval: Interval = {
      intervalMs,
      run,
      dueMs: this.now() + intervalMs,
      cancelled: false,
      once,
      clearTimer: () => {},
    };
    this.#intervals.add(interval);
    return interval;
  }

  #remove(interval: Interval): void {
    interval.cancelled = true;
    this.#intervals.delete(interval);
    interval.clearTimer();
  }

  /** Stops time: intervals run only through `advance()`. */
  pause(): void {
    if (this.#pausedAtMs !== null) return;
    const now = this.now();
    this.#pausedAtMs = now;
    for (const interval of this.#intervals) {
      // A timeout keeps its due time; an interval's next run is a whole interval away.
      if (!interval.once) interval.dueMs = now + interval.intervalMs;
    }
  }

  /** Lets time follow the system clock again, from where it stands. */
  resume(): void {
    if (this.#pausedAtMs === null) return;
    this.#offsetMs = this.#pausedAtMs - performance.now();
    this.#pausedAtMs = null;
  }

  /**
   * Moves paused time forward by `ms`, running each interval that falls due in time order;
   * after each, awaits `settle()` (the work the interval set off).
   */
  async advance(ms: number, settle: () => Promise<void>): Promise<void> {
    if (this.#pausedAtMs === null) throw new Error("PausableClock.advance() needs pause() first");
    const endMs = this.#pausedAtMs + ms;
    for (;;) {
      let next: Interval | null = null;
      for (const interval of this.#intervals) {
        if (interval.dueMs <= endMs && (next === null || interval.dueMs < next.dueMs)) {
          next = interval;
        }
      }
      if (next === null) break;
      this.#pausedAtMs = Math.max(this.#pausedAtMs, next.dueMs);
      next.dueMs += next.intervalMs;
      if (next.once) {
        this.#intervals.delete(next);
        next.clearTimer();
      }
      next.run();
      await settle();
    }
    this.#pausedAtMs = endMs;
  }
}
