import assert from "node:assert/strict";
import type { PeerProgress, RaftStatus } from "../../raft/raft_core.ts";
import { NO_NODE } from "../../raft/types.ts";
import { JoinsInFlight } from "./joins_in_flight.ts";
import { INVITED_AS_LEARNER, PROMOTION_POLICY_DEFAULT } from "./autopilot.ts";

function leaderWith(progress: Partial<PeerProgress>[], commit = 20): RaftStatus {
  return {
    id: 1,
    term: 2,
    vote: 1,
    commit,
    applied: commit,
    role: "leader",
    leaderId: 1,
    confState: { voters: [1], learners: progress.map((peer) => peer.nodeId!) },
    lastIndex: commit,
    leadTransferee: NO_NODE,
    progress: progress.map((peer) => ({
      nodeId: 0,
      matchIndex: 0,
      nextIndex: 1,
      state: "replicate",
      recentActive: true,
      isLearner: true,
      ...peer,
    } as PeerProgress)),
  };
}

Deno.test("JoinsInFlight lists a join from its request, then as a learner with its lag, until promoted", () => {
  const joins = new JoinsInFlight(PROMOTION_POLICY_DEFAULT);
  joins.requested(4);
  assert.deepStrictEqual(
    joins.toJson(leaderWith([])).map(({ node_id, phase, lag }) => [node_id, phase, lag]),
    [[4, "joining", null]],
  );
  joins.added(4);
  const learner = joins.toJson(leaderWith([{ nodeId: 4, matchIndex: 12 }]));
  assert.deepStrictEqual(learner.map(({ node_id, phase, lag }) => [node_id, phase, lag]), [
    [4, "learner", 8],
  ]);
  assert.ok(!Number.isNaN(Date.parse(learner[0]!.since)));
  // Promoted: no longer a learner, no longer listed.
  assert.deepStrictEqual(joins.toJson(leaderWith([])), []);
});

Deno.test("JoinsInFlight forgets a failed request, adopts learners of an earlier leader, and is empty on a follower", () => {
  const joins = new JoinsInFlight(PROMOTION_POLICY_DEFAULT);
  joins.requested(5);
  joins.failed(5);
  assert.deepStrictEqual(joins.toJson(leaderWith([])), []);
  assert.deepStrictEqual(
    joins.toJson(leaderWith([{ nodeId: 6, matchIndex: 20 }])).map((
      join,
    ) => [join.node_id, join.lag]),
    [[6, 0]],
  );
  assert.deepStrictEqual(joins.toJson({ ...leaderWith([{ nodeId: 6 }]), role: "follower" }), []);
  assert.deepStrictEqual(joins.toJson(null), []);
});

Deno.test("JoinsInFlight lists a learner invited to stay one while it catches up, then forgets it", () => {
  const joins = new JoinsInFlight({
    ...PROMOTION_POLICY_DEFAULT,
    keptLearner: (nodeId) => nodeId === 7 ? INVITED_AS_LEARNER : null,
  });
  joins.requested(7);
  joins.added(7);
  const behind = joins.toJson(leaderWith([{ nodeId: 7, matchIndex: 2, state: "probe" }]));
  assert.deepStrictEqual(behind.map(({ node_id, learner_reason }) => [node_id, learner_reason]), [
    [7, INVITED_AS_LEARNER],
  ]);
  assert.deepStrictEqual(joins.toJson(leaderWith([{ nodeId: 7, matchIndex: 20 }])), []);
  // Not adopted again as a learner of an earlier leader, either.
  assert.deepStrictEqual(joins.toJson(leaderWith([{ nodeId: 7, matchIndex: 20 }])), []);
});
