import { strictEqual } from "node:assert/strict";
import type { RaftStatus } from "../../raft/raft_core.ts";
import type { NodeId } from "../../raft/types.ts";
import {
  type AppliedMembers,
  INVITED_AS_LEARNER,
  keptLearnerReason,
  learnerHeldBack,
  learnerToPromote,
  type PromotionPolicy,
} from "./autopilot.ts";

/** A leader (node 1) with caught-up, active learners 2 and 3. */
function leaderWithLearners(): RaftStatus {
  const learner = (nodeId: NodeId) => ({
    nodeId,
    matchIndex: 50,
    nextIndex: 51,
    state: "replicate" as const,
    recentActive: true,
    isLearner: true,
  });
  return {
    id: 1,
    term: 2,
    vote: 1,
    commit: 50,
    applied: 50,
    role: "leader",
    leaderId: 1,
    confState: { voters: [1], learners: [2, 3] },
    lastIndex: 50,
    leadTransferee: 0,
    progress: [learner(2), learner(3)],
  };
}

/** The applied state: `learners` in the configuration, `invited` of them invited as learners. */
function applied(learners: NodeId[], invited: NodeId[]): AppliedMembers {
  return {
    appliedConfState: () => ({ voters: [1], learners }),
    isInvitedLearner: (nodeId) => invited.includes(nodeId),
  };
}

function policyOver(members: AppliedMembers): PromotionPolicy {
  return { votersMax: 5, keptLearner: (nodeId) => keptLearnerReason(members, nodeId) };
}

Deno.test("learnerToPromote() skips a learner invited as one and promotes the next caught-up learner", () => {
  const policy = policyOver(applied([2, 3], [2]));
  strictEqual(learnerToPromote(leaderWithLearners(), policy), 3);
  strictEqual(learnerHeldBack(leaderWithLearners(), 2, policy), INVITED_AS_LEARNER);
  strictEqual(learnerHeldBack(leaderWithLearners(), 3, policy), null);
});

Deno.test("learnerToPromote() promotes nobody when every caught-up learner was invited as one", () => {
  strictEqual(learnerToPromote(leaderWithLearners(), policyOver(applied([2, 3], [2, 3]))), null);
});

Deno.test("keptLearnerReason() holds back a learner whose adding entry is not applied here yet", () => {
  const policy = policyOver(applied([3], []));
  strictEqual(learnerToPromote(leaderWithLearners(), policy), 3);
  strictEqual(learnerHeldBack(leaderWithLearners(), 2, policy)?.startsWith("joining"), true);
});
