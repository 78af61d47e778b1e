import { strictEqual } from "node:assert/strict";
import type { PeerProgress, RaftStatus } from "../../raft/raft_core.ts";
import type { ConfState } from "../../raft/types.ts";
import {
  learnerHeldBack,
  learnerOwnReason,
  learnerToPromote,
  PROMOTION_LAG_ENTRIES_MAX,
  PROMOTION_POLICY_DEFAULT,
  type PromotionPolicy,
} from "./autopilot.ts";

const CAP_5 = PROMOTION_POLICY_DEFAULT;

function leaderStatus(
  progress: Partial<PeerProgress>[],
  confState: ConfState = { voters: [1], learners: [2] },
): RaftStatus {
  return {
    id: 1,
    term: 2,
    vote: 1,
    commit: 1000,
    applied: 1000,
    role: "leader",
    leaderId: 1,
    confState,
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

/** A leader with `voters` voters (1..n) and caught-up learners 10, 11, 12. */
function withVoters(voters: number): RaftStatus {
  const voterIds = Array.from({ length: voters }, (_, i) => i + 1);
  return leaderStatus(
    [
      ...voterIds.slice(1).map((nodeId) => ({ nodeId, isLearner: false })),
      { nodeId: 10 },
      { nodeId: 11 },
      { nodeId: 12 },
    ],
    { voters: voterIds, learners: [10, 11, 12] },
  );
}

Deno.test("learnerToPromote() picks an active, replicating learner within the lag of the commit index", () => {
  strictEqual(learnerToPromote(leaderStatus([{}]), CAP_5), 2);
  strictEqual(
    learnerToPromote(leaderStatus([{ matchIndex: 1000 - PROMOTION_LAG_ENTRIES_MAX }]), CAP_5),
    2,
  );
});

Deno.test("learnerToPromote() passes over voters, lagging, probing and silent learners, and non-leaders", () => {
  strictEqual(learnerToPromote(leaderStatus([{ isLearner: false }]), CAP_5), null);
  strictEqual(
    learnerToPromote(leaderStatus([{ matchIndex: 999 - PROMOTION_LAG_ENTRIES_MAX }]), CAP_5),
    null,
  );
  strictEqual(learnerToPromote(leaderStatus([{ state: "probe" }]), CAP_5), null);
  strictEqual(learnerToPromote(leaderStatus([{ recentActive: false }]), CAP_5), null);
  strictEqual(learnerToPromote({ ...leaderStatus([{}]), role: "follower" }, CAP_5), null);
});

Deno.test("learnerToPromote() promotes up to the voter cap and no further", () => {
  for (let voters = 1; voters <= 7; voters++) {
    for (const votersMax of [1, 3, 5, 7]) {
      const promoted = learnerToPromote(withVoters(voters), { votersMax });
      strictEqual(promoted, voters < votersMax ? 10 : null, `${voters} voters, cap ${votersMax}`);
    }
  }
});

Deno.test("learnerHeldBack() names the voter cap first, then what the learner's replication lacks", () => {
  const cap3: PromotionPolicy = { votersMax: 3 };
  strictEqual(learnerHeldBack(withVoters(3), 11, cap3), "voter cap 3 reached (--max-voters)");
  strictEqual(learnerHeldBack(withVoters(2), 11, cap3), null);
  strictEqual(
    learnerHeldBack(leaderStatus([{ matchIndex: 800 }]), 2, CAP_5),
    "catching up: 200 entries behind",
  );
  strictEqual(
    learnerHeldBack(leaderStatus([{ state: "snapshot" }]), 2, CAP_5),
    "catching up (snapshot)",
  );
  strictEqual(
    learnerHeldBack(leaderStatus([{ recentActive: false }]), 2, CAP_5),
    "not heard from recently",
  );
  strictEqual(learnerHeldBack(leaderStatus([]), 2, CAP_5), "not replicated to yet");
});

Deno.test("learnerOwnReason() tells a learner whether the voter cap holds it back, from its own configuration", () => {
  const full = { voters: [1, 2, 3, 4, 5], learners: [6] };
  strictEqual(learnerOwnReason(full, CAP_5), "voter cap 5 reached (--max-voters)");
  const room = { voters: [1, 2, 3], learners: [6] };
  strictEqual(learnerOwnReason(room, CAP_5).startsWith("catching up"), true);
});
