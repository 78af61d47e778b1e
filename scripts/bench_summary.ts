/**
 * The summary every benchmark prints: median, min and max of a set of runs. Its own module,
 * so that the sections `scripts/bench.ts` loads on demand need not import that script,
 * whose top-level run is still under way when they load.
 *
 * @module
 */

/** Median, min and max of a set of measurements. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** The median, min and max of `values`. */
export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: sorted.length };
}
