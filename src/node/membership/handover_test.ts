import { strictEqual } from "node:assert/strict";
import type { PeerProgress, RaftStatus } from "../../raft/raft_core.ts";
import { handoverTarget } from "./handover.ts";

function leaderStatus(progress: Partial<PeerProgress>[]): RaftStatus {
  return {
    id: 1,
    term: 2,
    vote: 1,
    commit: 100,
    applied: 100,
    role: "leader",
    leaderId: 1,
    confState: { voters: [1, 2, 3, 4], learners: [5] },
    lastIndex: 100,
    leadTransferee: 0,
    progress: progress.map((peer) => ({
      nodeId: 2,
      matchIndex: 100,
      nextIndex: 101,
      state: "replicate",
      recentActive: true,
      isLearner: false,
      ...peer,
    })),
  };
}

Deno.test("handoverTarget() picks the active voter with the highest match index", () => {
  const status = leaderStatus([
    { nodeId: 1, matchIndex: 100 },
    { nodeId: 2, matchIndex: 90 },
    { nodeId: 3, matchIndex: 98 },
    { nodeId: 4, matchIndex: 99 },
    { nodeId: 5, matchIndex: 100, isLearner: true },
  ]);
  strictEqual(handoverTarget(status, new Set([2, 3, 4, 5])), 4);
  strictEqual(handoverTarget(status, new Set([2, 3, 5])), 3, "node 4 was not heard from");
});

Deno.test("handoverTarget() finds nobody when only itself and learners are active", () => {
  const status = leaderStatus([
    { nodeId: 1, matchIndex: 100 },
    { nodeId: 2, matchIndex: 90 },
    { nodeId: 5, matchIndex: 100, isLearner: true },
  ]);
  strictEqual(handoverTarget(status, new Set([1, 5])), null);
});
