/**
 * Validation of Raft messages arriving on `blixard/raft/1`.
 *
 * The frame codec turns bytes into values; this schema turns values into `Message`s or
 * refuses them, so that the core only ever sees well-formed messages with sane ranges.
 * Peers are members (the transport checks their key first), but a bug or a version skew
 * on their side must close a stream, not crash this node.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import type { Entry, Message } from "../raft/types.ts";
import { lazySchema } from "../util/lazy_schema.ts";

/**
 * The schema of every message, built on the first message rather than at module load
 * (`lazySchema`): a node's start validates none.
 */
const messageSchema = lazySchema(() => {
  const NODE_ID_MAX = Number.MAX_SAFE_INTEGER;
  const index = z.int().check(z.nonnegative(), z.maximum(Number.MAX_SAFE_INTEGER));
  const term = index;
  const positiveNodeId = z.int().check(z.minimum(1), z.maximum(NODE_ID_MAX));
  const bytes = z.instanceof(Uint8Array);

  const membershipChange = z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("addLearner"), nodeId: positiveNodeId, context: bytes }),
    z.strictObject({ type: z.literal("promoteLearner"), nodeId: positiveNodeId }),
    z.strictObject({ type: z.literal("removeNode"), nodeId: positiveNodeId }),
  ]);

  const entry: z.ZodMiniType<Entry> = z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("normal"), term, index, data: bytes }),
    z.strictObject({ type: z.literal("membership"), term, index, change: membershipChange }),
  ]);

  const confState = z.strictObject({
    voters: z.array(positiveNodeId),
    learners: z.array(positiveNodeId),
  });

  const snapshot = z.strictObject({
    metadata: z.strictObject({ index, term, confState }),
    data: bytes,
  });

  const header = { term, from: positiveNodeId, to: positiveNodeId };

  return z.discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("RequestVote"),
      ...header,
      lastLogIndex: index,
      lastLogTerm: term,
      preVote: z.boolean(),
      leadershipTransfer: z.boolean(),
    }),
    z.strictObject({
      type: z.literal("RequestVoteResponse"),
      ...header,
      voteGranted: z.boolean(),
      preVote: z.boolean(),
    }),
    z.strictObject({
      type: z.literal("AppendEntries"),
      ...header,
      prevLogIndex: index,
      prevLogTerm: term,
      entries: z.array(entry),
      leaderCommit: index,
    }),
    z.strictObject({
      type: z.literal("AppendEntriesResponse"),
      ...header,
      success: z.boolean(),
      matchIndex: index,
      rejectedIndex: index,
      hintIndex: index,
      hintTerm: term,
    }),
    z.strictObject({ type: z.literal("Heartbeat"), ...header, commit: index, readContext: index }),
    z.strictObject({ type: z.literal("HeartbeatResponse"), ...header, readContext: index }),
    z.strictObject({ type: z.literal("InstallSnapshot"), ...header, snapshot }),
    z.strictObject({ type: z.literal("TimeoutNow"), ...header }),
    z.strictObject({ type: z.literal("ReadIndexRequest"), ...header, requestId: index }),
    z.strictObject({ type: z.literal("ReadIndexResponse"), ...header, requestId: index, index }),
  ]);
});

/** A decoded value that is not a valid Raft message; `detail` names the field. */
export class RaftMessageError extends Error {
  override name = "RaftMessageError";
}

/** Returns `value` as a `Message`, or throws `RaftMessageError` naming the first bad field. */
export function parseRaftMessage(value: unknown): Message {
  const result = messageSchema.safeParse(value);
  if (result.success) return result.data as Message;
  const issue = result.error.issues[0];
  const path = issue === undefined || issue.path.length === 0 ? "message" : issue.path.join(".");
  throw new RaftMessageError(`invalid Raft message: ${path}: ${issue?.message ?? "malformed"}`);
}
