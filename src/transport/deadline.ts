/**
 * Deadlines for work that cannot be cancelled, such as a native Iroh connect that on its
 * own gives up only after about 30 seconds. The caller gets an answer by the deadline;
 * the work runs on, and whatever it produces late is handed to `onLate` to be released.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { abortReason } from "../util/sleep.ts";

/** The longest deadline accepted: one day. Anything longer is a unit mistake. */
export const DEADLINE_MS_MAX = 24 * 60 * 60 * 1000;

/** Options of {@linkcode withDeadline}. */
export interface DeadlineOptions<T> {
  /** Milliseconds until `onTimeout()` is thrown; 1 to `DEADLINE_MS_MAX`. */
  timeoutMs: number;
  /** Builds the error the caller gets when the deadline passes. */
  onTimeout: () => Error;
  /** Rejects at once with the signal's reason when aborted. */
  signal?: AbortSignal | undefined;
  /** Receives a value that arrives after the deadline or abort, to release it. */
  onLate?: (value: T) => void;
}

/** Checks a deadline given by a caller: a whole number of milliseconds, 1 to one day. */
export function assertTimeoutMs(timeoutMs: number): void {
  assert(
    Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= DEADLINE_MS_MAX,
    "1 <= timeoutMs <= one day",
    { detail: () => `timeoutMs=${timeoutMs}` },
  );
}

/**
 * Settles like `work` if it settles within `timeoutMs` and before `signal` aborts;
 * otherwise rejects with `onTimeout()` or the abort reason. A late rejection of `work` is
 * swallowed, so that it never becomes an unhandled rejection.
 */
export function withDeadline<T>(work: Promise<T>, options: DeadlineOptions<T>): Promise<T> {
  assertTimeoutMs(options.timeoutMs);
  const { signal } = options;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      return true;
    };
    const onAbort = () => {
      if (finish()) reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      if (finish()) reject(options.onTimeout());
    }, options.timeoutMs);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        if (finish()) resolve(value);
        else options.onLate?.(value);
      },
      (error) => {
        if (finish()) reject(error);
      },
    );
  });
}
