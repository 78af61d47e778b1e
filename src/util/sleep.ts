/**
 * Waiting that honours an `AbortSignal`: every pause of a retry loop uses `sleep`, so that
 * stopping a node or closing a client ends its waits at once.
 *
 * @module
 */

import { type Scheduler, SYSTEM_SCHEDULER } from "./scheduler.ts";

/** The error an aborted signal stands for (its reason when that is an Error). */
export function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error
    ? reason
    : new DOMException("the operation was aborted", "AbortError");
}

/** Resolves after `durationMs`, or rejects with the abort reason as soon as `signal` aborts. */
export function sleep(durationMs: number, signal?: AbortSignal): Promise<void> {
  return sleepOn(SYSTEM_SCHEDULER, { durationMs, signal });
}

/**
 * `sleep` on an injected clock: resolves after `durationMs` of `scheduler`'s time, so that a
 * policy that waits can run on a test's or the simulator's clock.
 */
export function sleepOn(
  scheduler: Pick<Scheduler, "after">,
  options: { durationMs: number; signal?: AbortSignal | undefined },
): Promise<void> {
  const { durationMs, signal } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      cancel();
      reject(abortReason(signal));
    };
    // The listener goes when the timer fires: a long-lived signal must not collect them.
    const cancel = scheduler.after(durationMs, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
