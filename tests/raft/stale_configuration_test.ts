/**
 * A node whose log is too old to know the current configuration, next to a leader that
 * appended its own removal and lost leadership before it committed (simulation seed 9518,
 * docs/decisions.md "Pre-vote is always on, in the simulator too"):
 *
 * - node 1's log ends where voters are {1, 2} and node 3 a learner: it asks only node 2;
 * - node 2, the former leader, appended its own removal (voters {1, 3} there), so it never
 *   campaigns, and it refuses everyone else, whose logs are shorter;
 * - node 3's log makes it a voter of {1, 2, 3}: it is the only node that can win, with
 *   node 1's vote.
 *
 * With pre-vote (as every node runs it) node 1's campaigns change nothing, and node 3 is
 * elected. Without it, each timeout of node 1 raises its term though it cannot win, so
 * node 3's requests keep arriving at an older term than node 1's: the disruption pre-vote
 * exists for (thesis §9.6), which made seed 9518 stall.
 */

import assert from "node:assert/strict";
import type { Entry } from "../../src/raft/types.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import { membershipEntries, TestNetwork } from "./network.ts";

/** Voters {1, 2}, learner 3 (1..5); node 3 promoted (6); a write (7); node 2 removed (8). */
function logOf(lastIndex: number): Entry[] {
  const entries: Entry[] = [
    ...membershipEntries([1, 2], [3]),
    { type: "membership", term: 1, index: 6, change: { type: "promoteLearner", nodeId: 3 } },
    { type: "normal", term: 1, index: 7, data: new TextEncoder().encode("x") },
    { type: "membership", term: 1, index: 8, change: { type: "removeNode", nodeId: 2 } },
  ];
  return entries.slice(0, lastIndex);
}

function storageWith(lastIndex: number, commit: number): MemoryStorage {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 1, vote: 0, commit },
    snapshot: null,
    entries: logOf(lastIndex),
  });
  return storage;
}

function seed9518(preVote: boolean): TestNetwork {
  return new TestNetwork(
    new Map([
      [1, storageWith(5, 5)],
      [2, storageWith(8, 7)],
      [3, storageWith(7, 7)],
    ]),
    { preVote, checkQuorum: false, seed: 9518 },
  );
}

Deno.test("with pre-vote, a node whose stale configuration cannot elect it keeps its term, and the node that can win is elected", () => {
  const network = seed9518(true);
  assert.equal(network.electLeader(), 3);
  assert.equal(network.node(3).raft.status().term, 2, "one election, no term raised in vain");
  network.tick(5);
  assert.equal(network.node(2).storage.term(8), 2, "node 3's entry replaced the removal");
  assert.deepEqual(network.node(2).raft.status().confState.voters, [1, 2, 3]);
});

Deno.test("without pre-vote, the same node raises its term at every election timeout though it cannot win", () => {
  for (const preVote of [true, false]) {
    const network = seed9518(preVote);
    network.isolate(3);
    // Five election timeouts at most (10 to 19 ticks each): at least two campaigns of node 1.
    network.tick(5 * 10);
    assert.equal(network.leader(), null);
    const term = network.node(1).raft.status().term;
    if (preVote) assert.equal(term, 1, "pre-votes refused by node 2 raise nothing");
    else assert.ok(term >= 3, `node 1 is at term ${term}`);
  }
});
