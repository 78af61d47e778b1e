import { strictEqual } from "node:assert/strict";
import type { PeerProgress, RaftStatus } from "../../raft/raft_core.ts";
import { learnerToPromote, PROMOTION_LAG_ENTRIES_MAX } from "./autopilot.ts";

function leaderStatus(progress: Partial<PeerProgress>[]): RaftStatus {
  return {
    id: 1,
    term: 2,
    vote: 1,
    commit: 1000,
    applied: 1000,
    role: "leader",
    leaderId: 1,
    confState: { voters: [1], learners: [2] },
    lastIndex: 1000,
    leadTransferee: 0,
    progress: progress.map((peer) => ({
      nodeId: 2,
      matchIndex: 1000,
      nextIndex: 1001,
      state: "replicate",
      recentActive: true,
      isLearner: true,
      ...peer,
    })),
  };
}

Deno.test("learnerToPromote() picks an active, replicating learner within the lag of the commit index", () => {
  strictEqual(learnerToPromote(leaderStatus([{}])), 2);
  strictEqual(
    learnerToPromote(leaderStatus([{ matchIndex: 1000 - PROMOTION_LAG_ENTRIES_MAX }])),
    2,
  );
});

Deno.test("learnerToPromote() passes over voters, lagging, probing and silent learners, and non-leaders", () => {
  strictEqual(learnerToPromote(leaderStatus([{ isLearner: false }])), null);
  strictEqual(
    learnerToPromote(leaderStatus([{ matchIndex: 999 - PROMOTION_LAG_ENTRIES_MAX }])),
    null,
  );
  strictEqual(learnerToPromote(leaderStatus([{ state: "probe" }])), null);
  strictEqual(learnerToPromote(leaderStatus([{ recentActive: false }])), null);
  strictEqual(learnerToPromote({ ...leaderStatus([{}]), role: "follower" }), null);
});
