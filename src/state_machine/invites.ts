/**
 * Invite tickets in the replicated state (`docs/decisions.md`, "Invite tickets"): only the
 * SHA-256 hash of each ticket's token is kept, with its expiry, the uses left, the role it
 * grants and who asked for it. The rules (when a ticket is refused, what consuming it does,
 * which records are forgotten) live here as pure functions of the record and a time that
 * the leader wrote into the entry, so that every node applies them the same way.
 *
 * A ticket is consumed by the very membership entry that adds the learner: its context is
 * then an `InvitedMember` (the member's record and the invite's hash), not a bare
 * `MemberInfo`.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import {
  canonicalMemberInfo,
  type Decoded,
  type MemberInfo,
  memberInfoSchema,
} from "./member_info.ts";
import { decodeMessagePack, describeZodError, encodeMessagePack } from "./msgpack_codec.ts";

/** Limits on invites: they are replicated to every node. */
export const INVITE_LIMITS = {
  /** Records kept (outstanding, and used or revoked ones not yet forgotten). */
  recordsMax: 256,
  /** Longest `--ttl`: a ticket is a bearer credential, it must not live for long. */
  ttlMsMax: 7 * 24 * 60 * 60_000,
  /** Most `--uses` of one ticket. */
  usesMax: 1_000,
  /** Longest `createdBy` label. */
  createdByLengthMax: 64,
  /**
   * How long a used, revoked or expired record is kept after its expiry, so that a late
   * attempt hears "used", "revoked" or "expired" rather than "unknown".
   */
  keptAfterExpiryMs: 24 * 60 * 60_000,
  /** Bytes of a ticket's random token. */
  tokenBytes: 32,
  /** Longest ticket text accepted (`blx1…`), checked before anything is decoded. */
  ticketCharsMax: 2_048,
} as const;

/** A decoded invite ticket (`src/bootstrap/invite_ticket.ts` reads and writes its text). */
export interface InviteTicket {
  clusterId: string;
  /** Wall-clock expiry, milliseconds since the epoch. */
  expiresAtMs: number;
  /** The random token: whoever holds it may join, until it is consumed or expires. */
  token: Uint8Array;
  /** Members to reach, in the order to try them. */
  members: MemberInfo[];
}

/** A token hash: 64 lowercase hex digits (SHA-256). */
export const tokenHashSchema = lazySchema(() =>
  z.string().check(z.regex(/^[0-9a-f]{64}$/, "64 lowercase hex digits"))
);

/** The role a ticket grants: `voter` (promoted once caught up, the default) or `learner`. */
export type InviteRole = "voter" | "learner";

/** An invite's record in the replicated state. */
export interface InviteRecord {
  /** SHA-256 of the ticket's token, hex. The token itself is never stored. */
  tokenHash: string;
  role: InviteRole;
  /** Wall-clock expiry, milliseconds since the epoch, as the leader that created it saw it. */
  expiresAtMs: number;
  usesLeft: number;
  /** Who asked for it (the CLI's `user@host`), for `blixard cluster invites`. */
  createdBy: string;
  createdAtMs: number;
  /** `used` once its last use was consumed; `revoked` by `blixard cluster revoke-invite`. */
  state: "active" | "used" | "revoked";
}

/** Why a ticket is refused. */
export type InviteRefusal = "unknown" | "used" | "expired" | "revoked";

/** What a consumed ticket adds to an `addLearner` entry's context. */
export interface InviteUse {
  tokenHash: string;
  /** The leader's wall clock when it proposed the entry: expiry is checked against it. */
  nowMs: number;
}

/** The context of an `addLearner` entry that consumes an invite. */
export interface InvitedMember {
  member: MemberInfo;
  invite: InviteUse;
}

const timeSchema = lazySchema(() =>
  z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER))
);

/** Validates an untrusted `InviteRecord` (in a snapshot or a stored row). */
export const inviteRecordSchema = lazySchema(() =>
  z.strictObject({
    tokenHash: tokenHashSchema,
    role: z.enum(["voter", "learner"]),
    expiresAtMs: timeSchema,
    usesLeft: z.int().check(z.minimum(0), z.maximum(INVITE_LIMITS.usesMax)),
    createdBy: z.string().check(z.maxLength(INVITE_LIMITS.createdByLengthMax)),
    createdAtMs: timeSchema,
    state: z.enum(["active", "used", "revoked"]),
  })
);

const invitedMemberSchema = lazySchema(() =>
  z.strictObject({
    member: memberInfoSchema,
    invite: z.strictObject({ tokenHash: tokenHashSchema, nowMs: timeSchema }),
  })
);

/** A bare `MemberInfo`, or an `InvitedMember`; both as `{ member, invite }`. */
const learnerContextSchema = lazySchema(() =>
  z.union([
    invitedMemberSchema,
    z.pipe(memberInfoSchema, z.transform((member) => ({ member, invite: null }))),
  ])
);

/** `record` with its fields in the canonical order. */
export function canonicalInviteRecord(record: InviteRecord): InviteRecord {
  return {
    tokenHash: record.tokenHash,
    role: record.role,
    expiresAtMs: record.expiresAtMs,
    usesLeft: record.usesLeft,
    createdBy: record.createdBy,
    createdAtMs: record.createdAtMs,
    state: record.state,
  };
}

/** The canonical MessagePack encoding of `record` (a stored row). */
export function encodeInviteRecord(record: InviteRecord): Uint8Array {
  return encodeMessagePack(canonicalInviteRecord(record));
}

/** Decodes a stored row; never throws. */
export function decodeInviteRecord(bytes: Uint8Array): Decoded<InviteRecord> {
  return decodeWith(bytes, inviteRecordSchema, "invite record");
}

/** The context of an `addLearner` entry that consumes the invite `invite`. */
export function encodeInvitedMember(member: MemberInfo, invite: InviteUse): Uint8Array {
  return encodeMessagePack({
    member: canonicalMemberInfo(member),
    invite: { tokenHash: invite.tokenHash, nowMs: invite.nowMs },
  });
}

/**
 * Decodes an `addLearner` context: a bare `MemberInfo` (a join with the secret or with
 * none), or an `InvitedMember` (a join by ticket). Never throws.
 */
export function decodeLearnerContext(
  bytes: Uint8Array,
): Decoded<{ member: MemberInfo; invite: InviteUse | null }> {
  return decodeWith(bytes, learnerContextSchema, "member info");
}

/**
 * Why the ticket whose record is `record` (`undefined`: none has its hash) cannot be used
 * at `nowMs`, or `null` when it can.
 */
export function inviteRefusal(
  record: InviteRecord | undefined,
  nowMs: number,
): InviteRefusal | null {
  if (record === undefined) return "unknown";
  if (record.state !== "active") return record.state;
  if (nowMs >= record.expiresAtMs) return "expired";
  return null;
}

/** `record` after one use: the last use leaves it `used`. */
export function consumedInvite(record: InviteRecord): InviteRecord {
  const usesLeft = record.usesLeft - 1;
  return { ...record, usesLeft, state: usesLeft === 0 ? "used" : record.state };
}

/** Whether `record` may be forgotten at `nowMs`: long enough after its expiry. */
export function isForgettable(record: InviteRecord, nowMs: number): boolean {
  return nowMs >= record.expiresAtMs + INVITE_LIMITS.keptAfterExpiryMs;
}

/** What one refusal means, for the joiner's one line. */
export function describeRefusal(refusal: InviteRefusal): string {
  switch (refusal) {
    case "unknown":
      return "unknown: this cluster never issued it, or forgot it long after it expired";
    case "used":
      return "used: every use of it was consumed";
    case "expired":
      return "expired";
    case "revoked":
      return "revoked (blixard cluster revoke-invite)";
  }
}

function decodeWith<T>(
  bytes: Uint8Array,
  schema: z.ZodMiniType<T>,
  what: string,
): Decoded<T> {
  let value: unknown;
  try {
    value = decodeMessagePack(bytes);
  } catch (error) {
    return { ok: false, error: `${what} is not MessagePack: ${(error as Error).message}` };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) return { ok: false, error: `${what} ${describeZodError(parsed.error)}` };
  return { ok: true, value: parsed.data };
}
