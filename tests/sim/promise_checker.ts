/**
 * `PromiseChecker`: a message promises durable state. A granted vote promises that the
 * voter's term and vote are on disk (Raft §5.1, Figure 2: "updated on stable storage before
 * responding to RPCs"); an acknowledgement promises the entries up to its match index. The
 * checker records the promises each node sent and, when the node restarts, checks them
 * against what its disk kept. A message sent before its state was synced (and then lost in
 * a crash) fails here, whether or not the run goes on to elect two leaders.
 *
 * @module
 */

import type { Message, NodeId } from "../../src/raft/types.ts";
import type { MemoryStorageImage } from "../../src/storage/memory_storage.ts";
import { SafetyViolation } from "./safety_checker.ts";

interface VotePromise {
  term: number;
  candidate: NodeId;
}

interface LogPromise {
  term: number;
  matchIndex: number;
}

/** Records promises as messages leave and checks them when a node restarts. */
export class PromiseChecker {
  readonly #votes = new Map<NodeId, VotePromise>();
  readonly #logs = new Map<NodeId, LogPromise>();

  /** `message` left its sender. */
  observeSent(message: Message): void {
    if (message.type === "RequestVoteResponse" && message.voteGranted && !message.preVote) {
      this.#votes.set(message.from, { term: message.term, candidate: message.to });
    } else if (message.type === "AppendEntriesResponse" && message.success) {
      const previous = this.#logs.get(message.from);
      if (
        previous === undefined || message.term > previous.term ||
        (message.term === previous.term && message.matchIndex > previous.matchIndex)
      ) {
        this.#logs.set(message.from, { term: message.term, matchIndex: message.matchIndex });
      }
    }
  }

  /** Node `nodeId` restarts from `image`: every promise it sent must have survived. */
  checkRestart(nodeId: NodeId, image: MemoryStorageImage): void {
    const { term, vote } = image.hardState;
    const promisedVote = this.#votes.get(nodeId);
    if (
      promisedVote !== undefined &&
      (term < promisedVote.term || (term === promisedVote.term && vote !== promisedVote.candidate))
    ) {
      throw new SafetyViolation(
        "a vote is durable before it is sent",
        `node ${nodeId} granted its vote in term ${promisedVote.term} to ${promisedVote.candidate}, ` +
          `but restarts with term ${term} vote ${vote}: the vote left before it was durable`,
      );
    }
    const promisedLog = this.#logs.get(nodeId);
    if (promisedLog === undefined) return;
    const lastIndex = image.snapshot.metadata.index + image.entries.length;
    if (
      term < promisedLog.term || (term === promisedLog.term && lastIndex < promisedLog.matchIndex)
    ) {
      throw new SafetyViolation(
        "an acknowledgement is durable before it is sent",
        `node ${nodeId} acknowledged its log up to ${promisedLog.matchIndex} in term ${promisedLog.term}, ` +
          `but restarts with term ${term} and last index ${lastIndex}: the acknowledgement left ` +
          "before its entries were durable",
      );
    }
  }
}
