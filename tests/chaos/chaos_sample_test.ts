/**
 * A small fixed sample of `deno task chaos`, so that the harness cannot rot: one cycle of
 * a crash, a pause, a membership change and a whole-cluster crash on one 3-node cluster, every history checked for
 * linearizability and every acknowledged write read back. The big counts come from
 * `deno task chaos` (docs/reliability.md).
 */

import { assertFaultSampleHolds } from "./harness/sample.ts";

Deno.test("one cycle each of kill -9 of the leader, SIGSTOP of a follower, join/remove during a pause and a kill, and kill -9 of every node, on real nodes: every history linearizable, no acknowledged write lost", async () => {
  await assertFaultSampleHolds([
    "crash-leader",
    "pause-follower",
    "join-remove-leave",
    "crash-all",
  ]);
});
