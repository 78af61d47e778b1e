import { deepStrictEqual } from "node:assert/strict";
import { majority, quorumValue, voteResult } from "./quorum.ts";

Deno.test("majority() is more than half the voters", () => {
  deepStrictEqual([1, 2, 3, 4, 5].map(majority), [1, 2, 2, 3, 3]);
});

Deno.test("quorumValue() is the value a majority has reached", () => {
  const match = new Map([[1, 9], [2, 5], [3, 7], [4, 2], [5, 6]]);
  const value = (id: number) => match.get(id) ?? 0;
  deepStrictEqual(
    [
      quorumValue([1], value),
      quorumValue([1, 2], value),
      quorumValue([1, 2, 3], value),
      quorumValue([1, 2, 3, 4], value),
    ],
    [9, 5, 7, 5],
  );
  deepStrictEqual([quorumValue([1, 2, 3, 4, 5], value), quorumValue([], value)], [6, 0]);
});

Deno.test("voteResult() is won at a majority, lost when a majority is out of reach, else pending", () => {
  const voters = [1, 2, 3, 4, 5];
  deepStrictEqual(
    [
      voteResult(voters, new Map([[1, true], [2, true]])),
      voteResult(voters, new Map([[1, true], [2, true], [3, true]])),
      voteResult(voters, new Map([[1, true], [2, false], [3, false]])),
      voteResult(voters, new Map([[1, true], [2, false], [3, false], [4, false]])),
    ],
    ["pending", "won", "pending", "lost"],
  );
});

Deno.test("voteResult() ignores votes from nodes that are not voters", () => {
  deepStrictEqual(voteResult([1, 2, 3], new Map([[1, true], [7, true], [8, true]])), "pending");
});
