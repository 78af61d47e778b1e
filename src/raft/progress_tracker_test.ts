import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { ProgressTracker } from "./progress_tracker.ts";

Deno.test("ProgressTracker.setConfiguration() keeps progress of staying members and drops removed ones", () => {
  const tracker = new ProgressTracker(4);
  tracker.setConfiguration({ voters: [1, 2], learners: [3] }, 10);
  tracker.progress.get(2)!.maybeUpdate(7);
  tracker.setConfiguration({ voters: [1, 2, 3], learners: [4] }, 12);
  deepStrictEqual([...tracker.progress.keys()].sort(), [1, 2, 3, 4]);
  deepStrictEqual(
    [
      tracker.progress.get(2)!.match,
      tracker.progress.get(3)!.isLearner,
      tracker.progress.get(4)!.next,
    ],
    [7, false, 12],
  );
  tracker.setConfiguration({ voters: [1, 3], learners: [] }, 12);
  deepStrictEqual([...tracker.progress.keys()].sort(), [1, 3]);
});

Deno.test("ProgressTracker.committedIndex() counts voters only, never learners", () => {
  const tracker = new ProgressTracker(4);
  tracker.setConfiguration({ voters: [1, 2, 3], learners: [4, 5] }, 1);
  for (const [nodeId, match] of [[1, 9], [2, 3], [3, 2], [4, 9], [5, 9]] as const) {
    tracker.progress.get(nodeId)!.maybeUpdate(match);
  }
  strictEqual(tracker.committedIndex(), 3);
});

Deno.test("ProgressTracker.tallyVotes() keeps the first vote of each voter", () => {
  const tracker = new ProgressTracker(4);
  tracker.setConfiguration({ voters: [1, 2, 3], learners: [4] }, 1);
  tracker.recordVote(1, true);
  tracker.recordVote(4, true);
  strictEqual(tracker.tallyVotes(), "pending");
  tracker.recordVote(2, false);
  tracker.recordVote(2, true);
  strictEqual(tracker.tallyVotes(), "pending");
  tracker.recordVote(3, false);
  strictEqual(tracker.tallyVotes(), "lost");
});

Deno.test("ProgressTracker.quorumActive() needs a majority of voters heard from, the leader included", () => {
  const tracker = new ProgressTracker(4);
  tracker.setConfiguration({ voters: [1, 2, 3, 4, 5], learners: [6] }, 1);
  tracker.resetRecentActive(1);
  tracker.progress.get(2)!.recentActive = true;
  tracker.progress.get(6)!.recentActive = true;
  strictEqual(tracker.quorumActive(1), false);
  tracker.progress.get(3)!.recentActive = true;
  strictEqual(tracker.quorumActive(1), true);
  tracker.resetRecentActive(1);
  strictEqual(tracker.quorumActive(1), false);
});
