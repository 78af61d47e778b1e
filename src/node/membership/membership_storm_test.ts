/**
 * The leader's side of a join storm: joins beyond `JOINS_QUEUED_MAX` hear `busy` with a
 * pause, those that come back are admitted, and the autopilot promotes up to the voter cap.
 */

import assert from "node:assert/strict";
import { ClusterError } from "../replication/cluster_error.ts";
import { eventually } from "../../transport/testing.ts";
import { FAST_RAFT_TIMING, InProcessCluster, memberInfoOf } from "../testing/in_process_cluster.ts";
import { JOINS_QUEUED_MAX, MembershipManager } from "./membership_manager.ts";

const signal = () => AbortSignal.timeout(10_000);

Deno.test("MembershipManager.join() answers busy with a pause beyond the queued joins, and admits those that come back", async () => {
  const cluster = InProcessCluster.create({ voters: 1 });
  try {
    const leader = await cluster.leader();
    const storm = JOINS_QUEUED_MAX + 2;
    const infos = Array.from(
      { length: storm },
      (_, i) => cluster.addNode(memberInfoOf(2 + i)).info,
    );
    const first = await Promise.allSettled(
      infos.map((info) => leader.membership.join(info, signal())),
    );
    const refused = first.flatMap((outcome, i) =>
      outcome.status === "rejected" ? [{ info: infos[i]!, reason: outcome.reason }] : []
    );
    assert.equal(
      refused.length,
      storm - JOINS_QUEUED_MAX,
      "the joins past the queue were turned away",
    );
    for (const { reason } of refused) {
      assert.ok(reason instanceof ClusterError && reason.code === "busy", String(reason));
      assert.match(reason.message, /joins are queued ahead of node \d+; retry in \d+ ms/);
      assert.ok(reason.retryAfterMs !== null && reason.retryAfterMs > 0, "a pause is named");
    }
    for (const { info } of refused) await leader.membership.join(info, signal());
    assert.deepStrictEqual(
      leader.raft.status().confState.learners,
      infos.map((info) => info.nodeId),
    );
  } finally {
    await cluster.close();
  }
});

Deno.test("MembershipManager autopilot promotes learners up to the voter cap and leaves the rest learners", async () => {
  const cluster = InProcessCluster.create({ voters: 1 });
  try {
    const leader = await cluster.leader();
    // A manager on the same leader with a cap of 3: the test's own autopilot.
    const autopilot = new MembershipManager({
      nodeId: leader.nodeId,
      raft: leader.raft,
      directory: leader.directory,
      policy: { votersMax: 3 },
    });
    for (let nodeId = 2; nodeId <= 4; nodeId++) {
      await autopilot.join(cluster.addNode(memberInfoOf(nodeId)).info, signal());
    }
    await eventually("three voters", () => {
      autopilot.promoteCaughtUpLearners();
      return leader.raft.status().confState.voters.length === 3;
    });
    // Ten more autopilot rounds, each given time to propose and apply: no fourth voter.
    cluster.clock.pause();
    for (let round = 0; round < 10; round++) {
      autopilot.promoteCaughtUpLearners();
      await cluster.advance(FAST_RAFT_TIMING.heartbeatTicks * FAST_RAFT_TIMING.tickMs);
    }
    const conf = leader.raft.status().confState;
    assert.equal(conf.voters.length, 3, `voters ${conf.voters}`);
    assert.equal(conf.learners.length, 1, `learners ${conf.learners}`);
  } finally {
    await cluster.close();
  }
});
