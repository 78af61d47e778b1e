/**
 * A small fixed sample of `deno task chaos`, so that the harness cannot rot: one cycle of
 * a crash, a pause, a membership change and a whole-cluster crash on one 3-node cluster, every history checked for
 * linearizability and every acknowledged write read back. The big counts come from
 * `deno task chaos` (docs/reliability.md).
 */

import assert from "node:assert/strict";
import { runFaultSample } from "./harness/sample.ts";

Deno.test("one cycle each of kill -9 of the leader, SIGSTOP of a follower, join/remove during a pause and a kill, and kill -9 of every node, on real nodes: every history linearizable, no acknowledged write lost", async () => {
  const result = await runFaultSample([
    "crash-leader",
    "pause-follower",
    "join-remove-leave",
    "crash-all",
  ]);
  assert.equal(result.error, null, result.details);
  assert.equal(result.cycles, 4, result.details);
  assert.equal(result.violations, 0, result.details);
  assert.equal(result.lostAcknowledgedWrites, 0, result.details);
  assert.ok(result.operationsChecked > 0, "the clients worked during the faults");
});
