/**
 * Waiting that honours an `AbortSignal`: every pause of a retry loop uses `sleep`, so that
 * stopping a node or closing a client ends its waits at once.
 *
 * @module
 */

/** The error an aborted signal stands for (its reason when that is an Error). */
export function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error
    ? reason
    : new DOMException("the operation was aborted", "AbortError");
}

/** Resolves after `durationMs`, or rejects with the abort reason as soon as `signal` aborts. */
export function sleep(durationMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    // The listener goes when the timer fires: a long-lived signal must not collect them.
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, durationMs);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
