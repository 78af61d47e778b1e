/**
 * `SimClock`: the production `Scheduler` on simulated time, so that the production policy
 * (the `MembershipManager`'s autopilot, retries and deadlines, the handover, the joiner's
 * pauses) runs in the simulator. Timers fire in (due time, scheduling order), at the start
 * of each unit of time, from the run's own loop: no real timer or clock is involved.
 *
 * The policy is async: its promises settle in microtasks. The run awaits
 * `settleMicrotasks()` after every unit of time, which lets every continuation queued
 * during the unit run, in the order it was queued, before the next unit starts. Nothing
 * else runs in the process meanwhile, so a seed still replays exactly.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Scheduler } from "../../src/util/scheduler.ts";
import { EventQueue } from "./event_queue.ts";

/**
 * Milliseconds of the production clock per unit of simulated time: a node ticks every 10
 * units, and the node's tick is 20 ms (`DEFAULT_RAFT_TIMING`).
 */
export const MS_PER_UNIT = 2;

/** Timers waiting at once before the simulation is declared runaway. */
const TIMERS_MAX = 1_000_000;

interface Timer {
  run: () => void;
  cancelled: boolean;
  scope: Set<Timer>;
}

/** A scheduler whose timers all stop at once with `close()` (a node that crashed). */
export interface ScopedScheduler extends Scheduler {
  /** Cancels every timer of this scope; later ones are never scheduled. */
  close(): void;
}

/** Simulated time as the production `Scheduler` sees it. */
export class SimClock {
  readonly #now: () => number;
  readonly #timers = new EventQueue<Timer>(TIMERS_MAX);

  /** `now` reads the simulation's time in units. */
  constructor(now: () => number) {
    this.#now = now;
  }

  /** A scheduler of its own, for one node's lifetime or one actor. */
  scope(): ScopedScheduler {
    const timers = new Set<Timer>();
    let closed = false;
    const after = (delayMs: number, run: () => void): () => void => {
      if (closed) return () => {};
      const timer: Timer = { run, cancelled: false, scope: timers };
      timers.add(timer);
      const units = Math.max(0, Math.ceil(delayMs / MS_PER_UNIT));
      if (!this.#timers.push(this.#now() + units, timer)) {
        throw new Error(`SimClock: more than ${TIMERS_MAX} timers waiting`);
      }
      return () => {
        timer.cancelled = true;
        timers.delete(timer);
      };
    };
    return {
      now: () => this.#now() * MS_PER_UNIT,
      soon: (run) => void after(0, run),
      after,
      every: (intervalMs, run) => {
        let cancel = () => {};
        let stopped = false;
        const again = () => {
          if (stopped) return;
          cancel = after(intervalMs, () => {
            again();
            run();
          });
        };
        again();
        return () => {
          stopped = true;
          cancel();
        };
      },
      close: () => {
        closed = true;
        for (const timer of timers) timer.cancelled = true;
        timers.clear();
      },
    };
  }

  /** Runs every timer due now, those that fall due while they run included. */
  runDue(): void {
    const now = this.#now();
    for (
      let timer = this.#timers.popDue(now);
      timer !== undefined;
      timer = this.#timers.popDue(now)
    ) {
      if (timer.cancelled) continue;
      timer.scope.delete(timer);
      timer.run();
    }
  }
}

/**
 * Resolves once every microtask queued before it (and those they queue) has run: the
 * continuations of the policy's promises. `setImmediate` is only the barrier; it carries
 * no time into the run.
 */
export function settleMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
