import assert from "node:assert/strict";
import { eventually } from "../../transport/testing.ts";
import { InProcessCluster, memberInfoOf } from "../testing/in_process_cluster.ts";

// With the clock paused nothing ticks: no heartbeat, no check-quorum, no autopilot poll. The
// learner's acknowledgement of the log gives the leader's core nothing to send or persist,
// so only the look after an answer (`autopilotEvents().answered`) can promote it.
Deno.test("the autopilot promotes a caught-up learner on its answer alone, with no tick", async () => {
  const cluster = InProcessCluster.create({ voters: 1 });
  try {
    const leader = await cluster.leader();
    leader.raft.on(leader.membership.autopilotEvents());
    cluster.clock.pause();
    const joiner = cluster.addNode(memberInfoOf(2));
    await leader.membership.join(joiner.info, AbortSignal.timeout(10_000));
    await eventually(
      "node 2 became a voter",
      () => leader.raft.status().confState.voters.includes(2),
    );
    assert.deepStrictEqual(leader.raft.status().confState.learners, []);
  } finally {
    await cluster.close();
  }
});
