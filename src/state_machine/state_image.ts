/**
 * The state machine image carried in a Raft snapshot's `data`: every key, member record,
 * client session, the cluster id and the applied position, in one deterministic
 * MessagePack encoding. Nodes that applied the same log produce the same bytes, which the
 * simulator and the tests compare.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import type { ConfState, NodeId } from "../raft/types.ts";
import { parseKvResult } from "./apply_result.ts";
import { COMMAND_LIMITS } from "./commands.ts";
import { canonicalMemberInfo, type MemberInfo, memberInfoSchema } from "./member_info.ts";
import { kvResultFields } from "./apply_result.ts";
import {
  canonicalInviteRecord,
  INVITE_LIMITS,
  type InviteRecord,
  inviteRecordSchema,
} from "./invites.ts";
import {
  bytesSchema,
  decodeMessagePack,
  describeZodError,
  encodeMessagePack,
  plainBytes,
} from "./msgpack_codec.ts";
import type { ClientSession, KeyValue, RevokedKey, StateStore } from "./state_store.ts";

/**
 * The image layout this build writes; it also reads format 1 (before revoked keys), 2
 * (before invites) and 3 (before members invited as learners).
 */
export const STATE_IMAGE_FORMAT = 4;

/** How many pairs are read from the store at a time while encoding. */
const PAGE_PAIRS = 1024;

/** A decoded image. */
export interface StateImage {
  appliedIndex: number;
  confState: ConfState;
  clusterId: string | null;
  /** By node id. */
  members: MemberInfo[];
  /** By key, byte order. */
  pairs: KeyValue[];
  /** Oldest first. */
  sessions: ClientSession[];
  /** Oldest first. */
  revokedKeys: RevokedKey[];
  /** By token hash. */
  invites: InviteRecord[];
  /** Members that joined by a learner invite, by node id. */
  invitedLearners: NodeId[];
}

/** Raised when snapshot data is not an image this build can read. */
export class StateImageError extends Error {
  override name = "StateImageError";
}

/** Built on the first image decoded (`lazySchema`): most starts decode none. */
const imageSchema = lazySchema(() => {
  const idsSchema = z.array(z.int().check(z.minimum(1)));
  const imageFields = [
    z.literal([1, 2, 3, STATE_IMAGE_FORMAT]),
    z.int().check(z.minimum(0)),
    idsSchema,
    idsSchema,
    z.nullable(
      z.string().check(z.minLength(1), z.maxLength(COMMAND_LIMITS.clusterIdLengthMax)),
    ),
    z.array(memberInfoSchema),
    z.array(bytesSchema(COMMAND_LIMITS.valueBytesMax)),
    z.array(z.tuple([
      z.string().check(z.minLength(1), z.maxLength(COMMAND_LIMITS.clientIdLengthMax)),
      z.int().check(z.minimum(1)),
      z.int().check(z.minimum(1)),
      z.unknown(),
    ])),
  ] as const;
  const revokedSchema = z.array(
    z.tuple([z.string().check(z.minLength(1), z.maxLength(128)), z.int().check(z.minimum(1))]),
  );
  const invitesSchema = z.array(inviteRecordSchema).check(z.maxLength(INVITE_LIMITS.recordsMax));
  return z.union([
    z.tuple([...imageFields, revokedSchema, invitesSchema, idsSchema]),
    z.tuple([...imageFields, revokedSchema, invitesSchema]),
    z.tuple([...imageFields, revokedSchema]),
    z.tuple(imageFields),
  ]);
});
/** How many fields each image format has. */
const FIELDS_OF_FORMAT: Record<number, number> = { 1: 8, 2: 9, 3: 10, 4: 11 };

/** The image of everything in `store`, encoded deterministically. */
export function encodeStateImage(store: StateStore): Uint8Array {
  const confState = store.appliedConfState();
  return encodeMessagePack([
    STATE_IMAGE_FORMAT,
    store.appliedIndex(),
    [...confState.voters].sort((a, b) => a - b),
    [...confState.learners].sort((a, b) => a - b),
    store.clusterId(),
    store.memberInfos().map(canonicalMemberInfo),
    allPairsFlat(store),
    store.sessions().map((s) => [s.clientId, s.sequence, s.index, kvResultFields(s.result)]),
    store.revokedKeys().map((revoked) => [revoked.p2pNodeId, revoked.index]),
    store.invites().map(canonicalInviteRecord),
    store.invitedLearners(),
  ]);
}

/** Decodes and validates image bytes; throws `StateImageError` when they are not an image. */
export function decodeStateImage(bytes: Uint8Array): StateImage {
  let value: unknown;
  try {
    value = decodeMessagePack(bytes);
  } catch (error) {
    throw new StateImageError(`snapshot data is not MessagePack: ${(error as Error).message}`);
  }
  const parsed = imageSchema.safeParse(value);
  if (!parsed.success) throw new StateImageError(`snapshot data ${describeZodError(parsed.error)}`);
  const [format, appliedIndex, voters, learners, clusterId, members, flat, sessionRows] =
    parsed.data;
  const revokedRows = parsed.data.length >= 9 ? parsed.data[8]! : [];
  const invites = parsed.data.length >= 10 ? parsed.data[9]! : [];
  const invitedLearners = parsed.data.length === 11 ? parsed.data[10] : [];
  if (FIELDS_OF_FORMAT[format] !== parsed.data.length) {
    throw new StateImageError(`snapshot data of format ${format} has ${parsed.data.length} fields`);
  }
  if (flat.length % 2 !== 0) throw new StateImageError("snapshot data has a key without a value");
  const pairs: KeyValue[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    pairs.push({ key: plainBytes(flat[i]!), value: plainBytes(flat[i + 1]!) });
  }
  const sessions = sessionRows.map(([clientId, sequence, index, result]) => {
    try {
      return { clientId, sequence, index, result: parseKvResult(result) };
    } catch (error) {
      throw new StateImageError(`snapshot data session ${clientId}: ${(error as Error).message}`);
    }
  });
  const revokedKeys = revokedRows.map(([p2pNodeId, index]) => ({ p2pNodeId, index }));
  return {
    appliedIndex,
    confState: { voters, learners },
    clusterId,
    members,
    pairs,
    sessions,
    revokedKeys,
    invites,
    invitedLearners,
  };
}

/** Replaces everything in `store` with `image`. Call inside `store.transaction`. */
export function loadStateImage(store: StateStore, image: StateImage): void {
  store.clear();
  for (const { key, value } of image.pairs) store.put(key, value);
  for (const info of image.members) store.putMemberInfo(info);
  for (const session of image.sessions) store.putSession(session);
  for (const revoked of image.revokedKeys) store.revokeKey(revoked);
  for (const invite of image.invites) store.putInvite(invite);
  for (const nodeId of image.invitedLearners) store.addInvitedLearner(nodeId);
  if (image.clusterId !== null) store.setClusterId(image.clusterId);
  store.setAppliedConfState(image.confState);
  store.setAppliedIndex(image.appliedIndex);
}

/** Every pair in the store as `[key, value, key, value, …]`, read page by page. */
function allPairsFlat(store: StateStore): Uint8Array[] {
  const flat: Uint8Array[] = [];
  let startAfter: Uint8Array | undefined;
  for (;;) {
    const options = startAfter === undefined
      ? { limit: PAGE_PAIRS }
      : { limit: PAGE_PAIRS, startAfter };
    const page = store.list(new Uint8Array(), options);
    for (const { key, value } of page) flat.push(key, value);
    if (page.length < PAGE_PAIRS) return flat;
    startAfter = page.at(-1)!.key;
  }
}
