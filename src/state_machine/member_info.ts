/**
 * `MemberInfo`: how to reach a cluster member over P2P. It travels as the `context` of an
 * `addLearner` membership entry and in a `setMemberInfo` command, and the state machine
 * keeps one per member, so that a restarted node is found by its key, not by a stale address.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import type { NodeId } from "../raft/types.ts";
import { decodeMessagePack, describeZodError, encodeMessagePack } from "./msgpack_codec.ts";

/** The P2P address record of one member. */
export interface MemberInfo {
  /** The member's Raft node id. */
  nodeId: NodeId;
  /** The member's Iroh endpoint id (its public key). */
  p2pNodeId: string;
  /** Direct addresses, `ip:port`, in the order the member prefers them. */
  addresses: string[];
  /** The relay the member uses, or `null` for none. */
  relayUrl: string | null;
}

/** Limits on a `MemberInfo`: it is replicated to every node and kept forever. */
export const MEMBER_INFO_LIMITS = {
  p2pNodeIdLengthMax: 128,
  addressesMax: 16,
  addressLengthMax: 256,
  relayUrlLengthMax: 2048,
} as const;

/** Validates an untrusted value as a `MemberInfo` (strict: unknown fields are refused). */
export const memberInfoSchema = lazySchema(() =>
  z.strictObject({
    nodeId: z.int().check(z.minimum(1)),
    p2pNodeId: z.string().check(
      z.minLength(1),
      z.maxLength(MEMBER_INFO_LIMITS.p2pNodeIdLengthMax),
    ),
    addresses: z.array(
      z.string().check(z.minLength(1), z.maxLength(MEMBER_INFO_LIMITS.addressLengthMax)),
    ).check(z.maxLength(MEMBER_INFO_LIMITS.addressesMax)),
    relayUrl: z.nullable(
      z.string().check(z.minLength(1), z.maxLength(MEMBER_INFO_LIMITS.relayUrlLengthMax)),
    ),
  })
);

/** A decoded value, or why the bytes could not be decoded. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** `info` with its fields in the canonical order, so that it encodes the same everywhere. */
export function canonicalMemberInfo(info: MemberInfo): MemberInfo {
  return {
    nodeId: info.nodeId,
    p2pNodeId: info.p2pNodeId,
    addresses: [...info.addresses],
    relayUrl: info.relayUrl,
  };
}

/** The canonical MessagePack encoding of `info`. */
export function encodeMemberInfo(info: MemberInfo): Uint8Array {
  return encodeMessagePack(canonicalMemberInfo(info));
}

/** Decodes and validates `bytes`; never throws. */
export function decodeMemberInfo(bytes: Uint8Array): Decoded<MemberInfo> {
  let value: unknown;
  try {
    value = decodeMessagePack(bytes);
  } catch (error) {
    return { ok: false, error: `member info is not MessagePack: ${(error as Error).message}` };
  }
  const parsed = memberInfoSchema.safeParse(value);
  if (!parsed.success) return { ok: false, error: `member info ${describeZodError(parsed.error)}` };
  return { ok: true, value: parsed.data };
}
