/**
 * The `blixard/rpc/1` methods of invite tickets (`src/bootstrap/invite_ticket.ts`):
 *
 * - `cluster.invite`, `cluster.invites`, `cluster.revoke_invite`: an operator's, behind the
 *   secret gate like every cluster method;
 * - `cluster.join_by_invite`: a joiner's, open to strangers (it holds no secret: the token
 *   is its credential). The leader checks the token's hash before it proposes anything,
 *   so a stranger's request costs a hash and a lookup.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { INVITE_LIMITS, tokenHashSchema } from "../state_machine/invites.ts";
import { JOIN_RPC, memberAddressSchema } from "./cluster_rpcs.ts";
import { defineRpc } from "./rpc.ts";

/** The error code of a join whose ticket is refused (used, expired, revoked, unknown). */
export const INVITE_REFUSED = "invite_refused";

/** Bytes of a cluster secret handed to an invited joiner (`CLUSTER_SECRET_BYTES`). */
const SECRET_BYTES = 32;

const index = lazySchema(() => z.int().check(z.nonnegative()));
const timeMs = lazySchema(() => z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER)));
const exactBytes = (length: number) =>
  z.custom<Uint8Array>((value) => value instanceof Uint8Array, "expected bytes").check(
    z.refine((value) => value.length === length, `exactly ${length} bytes`),
  );

/** `cluster.invite`: a new ticket (leader only; members forward). */
export const INVITE_RPC = defineRpc({
  method: "cluster.invite",
  request: () =>
    z.strictObject({
      ttlMs: z.int().check(z.minimum(1_000), z.maximum(INVITE_LIMITS.ttlMsMax)),
      uses: z.int().check(z.minimum(1), z.maximum(INVITE_LIMITS.usesMax)),
      role: z.enum(["voter", "learner"]),
      createdBy: z.string().check(z.maxLength(INVITE_LIMITS.createdByLengthMax)),
    }),
  response: () =>
    z.strictObject({
      ticket: z.string().check(z.minLength(1), z.maxLength(INVITE_LIMITS.ticketCharsMax)),
      tokenHash: tokenHashSchema,
      expiresAtMs: timeMs,
      index,
    }),
});

/** One invite as `cluster.invites` lists it. */
export const inviteJsonSchema = lazySchema(() =>
  z.strictObject({
    tokenHash: tokenHashSchema,
    role: z.enum(["voter", "learner"]),
    expiresAtMs: timeMs,
    usesLeft: z.int().check(z.minimum(0), z.maximum(INVITE_LIMITS.usesMax)),
    createdBy: z.string().check(z.maxLength(INVITE_LIMITS.createdByLengthMax)),
    createdAtMs: timeMs,
    state: z.enum(["active", "used", "revoked"]),
  })
);

/** `cluster.invites`: every invite record, read linearizably. */
export const INVITES_RPC = defineRpc({
  method: "cluster.invites",
  request: () => z.strictObject({}),
  response: () =>
    z.strictObject({
      invites: z.array(inviteJsonSchema).check(z.maxLength(INVITE_LIMITS.recordsMax)),
      /** The answering node's wall clock, to tell outstanding from expired. */
      nowMs: timeMs,
    }),
});

/** `cluster.revoke_invite`: revoke the one outstanding invite whose hash starts with `hashPrefix`. */
export const REVOKE_INVITE_RPC = defineRpc({
  method: "cluster.revoke_invite",
  request: () => z.strictObject({ hashPrefix: z.string().check(z.regex(/^[0-9a-f]{6,64}$/)) }),
  response: () => z.strictObject({ tokenHash: tokenHashSchema, index }),
});

/**
 * `cluster.join_by_invite`: add the caller as a learner, consuming one use of the ticket
 * whose token it presents, in the same entry. Answered by the leader (a member forwards)
 * once that entry is applied, with the cluster's secret when it has one: the connection is
 * encrypted and its far end is the key the ticket named.
 */
export const JOIN_BY_INVITE_RPC = defineRpc({
  method: "cluster.join_by_invite",
  request: () =>
    z.strictObject({
      member: memberAddressSchema,
      clusterId: z.string().check(z.minLength(1), z.maxLength(128)),
      token: exactBytes(INVITE_LIMITS.tokenBytes),
    }),
  // What `cluster.join` answers, and the secret.
  response: () => z.extend(JOIN_RPC.response, { secret: z.nullable(exactBytes(SECRET_BYTES)) }),
});
