/**
 * Cheap structural checks on messages from peers. The transport validates the encoding;
 * these check the Raft-level promises the core relies on (indexes and terms are
 * non-negative integers, AppendEntries carries a contiguous run of entries no newer than
 * its term), so that a confused or buggy peer is ignored instead of tripping an invariant.
 *
 * @module
 */

import type { AppendEntries, Message, NodeId } from "./types.ts";

function isIndex(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function entriesAreContiguous(message: AppendEntries): boolean {
  let expectedIndex = message.prevLogIndex + 1;
  let previousTerm = message.prevLogTerm;
  for (const entry of message.entries) {
    if (entry.index !== expectedIndex || entry.term < previousTerm || entry.term > message.term) {
      return false;
    }
    expectedIndex += 1;
    previousTerm = entry.term;
  }
  return true;
}

/** True when `message` is addressed to `self`, from another node, and internally consistent. */
export function isWellFormedMessage(message: Message, self: NodeId): boolean {
  if (
    message.to !== self || message.from === self || !(message.from >= 1) || !isIndex(message.from)
  ) return false;
  if (!isIndex(message.term)) return false;
  switch (message.type) {
    case "AppendEntries":
      return isIndex(message.prevLogIndex) && isIndex(message.prevLogTerm) &&
        isIndex(message.leaderCommit) &&
        message.prevLogTerm <= message.term && entriesAreContiguous(message);
    case "AppendEntriesResponse":
      return isIndex(message.matchIndex) && isIndex(message.rejectedIndex) &&
        isIndex(message.hintIndex) &&
        isIndex(message.hintTerm);
    case "RequestVote":
      return isIndex(message.lastLogIndex) && isIndex(message.lastLogTerm);
    case "Heartbeat":
      return isIndex(message.commit) && isIndex(message.readContext);
    case "HeartbeatResponse":
      return isIndex(message.readContext);
    case "InstallSnapshot":
      return isIndex(message.snapshot.metadata.index) && isIndex(message.snapshot.metadata.term) &&
        message.snapshot.metadata.term <= message.term;
    case "ReadIndexResponse":
      return isIndex(message.index);
    case "RequestVoteResponse":
    case "TimeoutNow":
    case "ReadIndexRequest":
      return true;
  }
}
