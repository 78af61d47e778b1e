/**
 * Majority arithmetic over the voters of one configuration: the commit index a quorum
 * has reached and the outcome of an election.
 *
 * @module
 */

import type { NodeId } from "./types.ts";

/** The smallest number of voters that forms a majority of `voterCount`. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest value that a majority of `voters` has reached, where `valueOf` gives each
 * voter's value (a match index, an acknowledged read context). 0 when there are no voters.
 */
export function quorumValue(
  voters: readonly NodeId[],
  valueOf: (nodeId: NodeId) => number,
): number {
  const count = voters.length;
  if (count === 0) return 0;
  // Insertion sort, descending: configurations are small, and this runs on every acknowledgement.
  const values = new Array<number>(count);
  for (let i = 0; i < count; i += 1) {
    const value = valueOf(voters[i]!);
    let j = i;
    while (j > 0 && values[j - 1]! < value) {
      values[j] = values[j - 1]!;
      j -= 1;
    }
    values[j] = value;
  }
  return values[majority(count) - 1]!;
}

/** The outcome of an election so far. */
export type VoteResult = "won" | "lost" | "pending";

/** Counts `votes` (granted or not) from `voters`; votes of non-voters do not count. */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  let granted = 0;
  let missing = 0;
  for (const voter of voters) {
    const vote = votes.get(voter);
    if (vote === undefined) missing += 1;
    else if (vote) granted += 1;
  }
  const needed = majority(voters.length);
  if (granted >= needed) return "won";
  return granted + missing >= needed ? "pending" : "lost";
}
