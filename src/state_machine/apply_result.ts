/**
 * What applying one log entry produced, as the node hands it back to the client that
 * proposed the entry. Key/value results are also remembered in client sessions (so that a
 * retry gets the first answer), which is why they have a canonical encoding.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import type { ConfState, NodeId } from "../raft/types.ts";
import { COMMAND_LIMITS } from "./commands.ts";
import type { InviteRefusal } from "./invites.ts";
import {
  bytesSchema,
  decodeMessagePack,
  describeZodError,
  encodeMessagePack,
  plainBytes,
} from "./msgpack_codec.ts";

/** `put` took effect at `index`. */
export interface PutResult {
  type: "put";
  index: number;
}

/** `delete` took effect at `index`; `existed` tells whether the key was there. */
export interface DeleteResult {
  type: "delete";
  index: number;
  existed: boolean;
}

/**
 * `compareAndSet` at `index`: `succeeded` tells whether the key held the expected value;
 * `current` is what the key holds after the command (the new value on success, the value
 * that did not match on failure, `null` when absent).
 */
export interface CompareAndSetResult {
  type: "compareAndSet";
  index: number;
  succeeded: boolean;
  current: Uint8Array | null;
}

/** The results a client session remembers. */
export type KvResult = PutResult | DeleteResult | CompareAndSetResult;

/** Every result of `KvStateMachine.apply`. */
export type ApplyResult =
  | KvResult
  /** The empty entry a new leader appends (Raft §8): nothing to do. */
  | { type: "noop"; index: number }
  /**
   * A membership change; `error` says why the member's record could not be read, if so.
   * `inviteRefusal`: the entry added a learner by an invite ticket that was no longer
   * usable when the entry was applied (the leader then removes that learner).
   */
  | {
    type: "membership";
    index: number;
    confState: ConfState;
    error: string | null;
    inviteRefusal?: InviteRefusal;
  }
  | { type: "createInvite"; index: number }
  | { type: "revokeInvite"; index: number }
  | { type: "initCluster"; index: number; clusterId: string }
  | { type: "setMemberInfo"; index: number; nodeId: NodeId }
  /** The command was malformed or refused; the state did not change except the applied index. */
  | { type: "error"; index: number; error: string };

const kvResultSchema = lazySchema(() => {
  const indexSchema = z.int().check(z.minimum(1));
  return z.union([
    z.tuple([z.literal("put"), indexSchema]),
    z.tuple([z.literal("delete"), indexSchema, z.boolean()]),
    z.tuple([
      z.literal("compareAndSet"),
      indexSchema,
      z.boolean(),
      z.nullable(bytesSchema(COMMAND_LIMITS.valueBytesMax)),
    ]),
  ]);
});

/** The canonical encoding of `result`: a MessagePack array, fields in a fixed order. */
export function encodeKvResult(result: KvResult): Uint8Array {
  return encodeMessagePack(kvResultFields(result));
}

/** `result` as the array `encodeKvResult` encodes. */
export function kvResultFields(result: KvResult): unknown[] {
  switch (result.type) {
    case "put":
      return [result.type, result.index];
    case "delete":
      return [result.type, result.index, result.existed];
    case "compareAndSet":
      return [result.type, result.index, result.succeeded, result.current];
  }
}

/** Decodes `kvResultFields` output; throws on anything else (stored state is damaged). */
export function parseKvResult(fields: unknown): KvResult {
  const parsed = kvResultSchema.safeParse(fields);
  if (!parsed.success) throw new Error(`stored client result ${describeZodError(parsed.error)}`);
  const data = parsed.data;
  switch (data[0]) {
    case "put":
      return { type: "put", index: data[1] };
    case "delete":
      return { type: "delete", index: data[1], existed: data[2] };
    case "compareAndSet":
      return {
        type: "compareAndSet",
        index: data[1],
        succeeded: data[2],
        current: data[3] === null ? null : plainBytes(data[3]),
      };
  }
}

/** Decodes `encodeKvResult` output; throws on anything else (stored state is damaged). */
export function decodeKvResult(bytes: Uint8Array): KvResult {
  return parseKvResult(decodeMessagePack(bytes));
}
