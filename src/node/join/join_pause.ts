/**
 * How long a joiner pauses between join attempts: the policy part of the joiner
 * (`joiner.ts`), apart from its network, so that the simulator's joiners pause by it too
 * (`tests/sim/sim_operator.ts`).
 *
 * @module
 */

import { backoffMs } from "../../util/backoff.ts";

/** First and longest pause between join attempts. */
export const RETRY_BACKOFF_MIN_MS = 25;
export const RETRY_BACKOFF_MAX_MS = 1_000;
/**
 * A busy leader's `retryAfterMs` is stretched by up to this fraction at random, so that the
 * joiners it turned away together come back spread out rather than as the same storm.
 */
const BUSY_JITTER_FRACTION = 0.5;

/**
 * The pause before asking again after `busy` number `attempt` (0 for the first): the
 * leader's `retryAfterMs` stretched by up to `BUSY_JITTER_FRACTION`, or without one the
 * joiner's own backoff. `random` is uniform in [0, 1).
 */
export function busyPauseMs(
  retryAfterMs: number | null,
  attempt: number,
  random: () => number,
): number {
  if (retryAfterMs === null) {
    return backoffMs(attempt, {
      initialMs: RETRY_BACKOFF_MIN_MS,
      maxMs: RETRY_BACKOFF_MAX_MS,
      random,
    });
  }
  return Math.round(retryAfterMs * (1 + BUSY_JITTER_FRACTION * random()));
}
