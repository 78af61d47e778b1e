/**
 * `ProgressTracker`: the configuration the core is using (voters and learners) with, for
 * a leader, the replication `Progress` of every member, and the votes of an election.
 *
 * @module
 */

import { Progress } from "./progress.ts";
import { majority, quorumValue, type VoteResult, voteResult } from "./quorum.ts";
import type { ConfState, NodeId } from "./types.ts";

/** Voters, learners, their progress and the votes received in the current election. */
export class ProgressTracker {
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  /** One entry per member (voter or learner), the local node included. */
  readonly progress = new Map<NodeId, Progress>();
  /** Votes (or pre-votes) received in the current election: granted or rejected. */
  readonly votes = new Map<NodeId, boolean>();
  readonly #maxInflightMessages: number;

  /** `maxInflightMessages` bounds the replicate window of every follower. */
  constructor(maxInflightMessages: number) {
    this.#maxInflightMessages = maxInflightMessages;
  }

  /**
   * Switches to `conf`. Members that stay keep their progress; new members start probing
   * at `nextIndex`; removed members are forgotten.
   */
  setConfiguration(conf: ConfState, nextIndex: number): void {
    this.voters = [...conf.voters];
    this.learners = [...conf.learners];
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const nodeId of this.progress.keys()) {
      if (!members.has(nodeId)) this.progress.delete(nodeId);
    }
    for (const nodeId of members) {
      const isLearner = conf.learners.includes(nodeId);
      const existing = this.progress.get(nodeId);
      if (existing === undefined) {
        this.progress.set(nodeId, this.#newProgress(nextIndex, isLearner));
      } else existing.isLearner = isLearner;
    }
  }

  /** Fresh progress for every member, as a new leader has: all probing at `nextIndex`. */
  resetProgress(nextIndex: number): void {
    for (const [nodeId, progress] of this.progress) {
      this.progress.set(nodeId, this.#newProgress(nextIndex, progress.isLearner));
    }
  }

  /** True when `nodeId` is a voter. */
  isVoter(nodeId: NodeId): boolean {
    return this.voters.includes(nodeId);
  }

  /** The highest index a majority of voters has matched. */
  committedIndex(): number {
    return quorumValue(this.voters, (nodeId) => this.progress.get(nodeId)?.match ?? 0);
  }

  /** Records the vote of `nodeId`; a repeated vote from the same node keeps the first. */
  recordVote(nodeId: NodeId, granted: boolean): void {
    if (!this.votes.has(nodeId)) this.votes.set(nodeId, granted);
  }

  /** The outcome of the current election. */
  tallyVotes(): VoteResult {
    return voteResult(this.voters, this.votes);
  }

  /** Check-quorum: a majority of voters was heard from recently (`self` always counts). */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const nodeId of this.voters) {
      if (nodeId === self || this.progress.get(nodeId)?.recentActive === true) active += 1;
    }
    return active >= majority(this.voters.length);
  }

  /** Starts a new check-quorum round. */
  resetRecentActive(self: NodeId): void {
    for (const [nodeId, progress] of this.progress) progress.recentActive = nodeId === self;
  }

  #newProgress(nextIndex: number, isLearner: boolean): Progress {
    return new Progress(nextIndex, { maxInflightMessages: this.#maxInflightMessages, isLearner });
  }
}
