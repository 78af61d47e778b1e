/**
 * Capped exponential backoff, the one rule every retry loop uses (the seed search, the
 * joiner, the Raft transport's reconnects, the client).
 *
 * @module
 */

/** How a backoff grows. */
export interface BackoffOptions {
  /** The pause before the first retry (attempt 0). */
  initialMs: number;
  /** The longest pause. */
  maxMs: number;
  /**
   * Uniform in [0, 1): with it, the pause is uniform in [half, all] of the capped pause, so
   * that callers that failed together do not retry together. Without it, no jitter.
   */
  random?: () => number;
}

/** The pause before retry `attempt` (0 for the first): `initialMs` doubled per attempt, capped at `maxMs`. */
export function backoffMs(attempt: number, options: BackoffOptions): number {
  const cappedMs = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  if (options.random === undefined) return cappedMs;
  return Math.round(cappedMs / 2 + (cappedMs / 2) * options.random());
}
