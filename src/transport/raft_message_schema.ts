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

/**
 * Builds the schema and runs it once on the messages a member receives most (10 ms of a
 * cold first message here), so that a node can do it while nothing waits on it instead of
 * on its first message, typically a join's. Never throws; returns whether every sample was
 * accepted (a sample the schema refuses warms less of it).
 */
export function warmRaftMessageParser(): boolean {
  const header = { term: 1, from: 1, to: 2 };
  const entries = [
    { type: "normal", term: 1, index: 1, data: new Uint8Array() },
    { type: "membership", term: 1, index: 2, change: { type: "promoteLearner", nodeId: 2 } },
  ];
  const samples = [
    {
      type: "AppendEntriesResponse",
      ...header,
      success: true,
      matchIndex: 1,
      rejectedIndex: 0,
      hintIndex: 0,
      hintTerm: 0,
    },
    { type: "HeartbeatResponse", ...header, readContext: 0 },
    { type: "Heartbeat", ...header, commit: 1, readContext: 0 },
    { type: "AppendEntries", ...header, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, entries },
  ];
  const accepted = samples.map((sample) => messageSchema.safeParse(sample).success);
  return accepted.every((ok) => ok);
}
