/**
 * Invite tickets (`blixard cluster invite`, `blixard node --join TICKET`): one string that
 * both locates a cluster and admits one machine into it.
 *
 * `blx1` then unpadded base64url of a MessagePack array and a 4-byte checksum:
 * `[clusterId, expiresAtMs, token, members]`, each member `[nodeId, key, addresses,
 * relayUrl]` with `key` the 32 bytes of its Iroh endpoint id. The `1` is the version: a
 * later layout gets another prefix, and this build names it rather than misreading it. The
 * checksum (the first 4 bytes of SHA-256 of the array) catches a ticket cut or mistyped
 * in copying, so that the joiner says so instead of "unknown ticket".
 *
 * A ticket is untrusted input (it arrives by chat or mail): decoding is bounded in length
 * before any work, and every field is checked. The keys pin the cluster's identity: the
 * joiner reaches a member by its key over an authenticated QUIC connection, so nobody in
 * between can stand in for it. The token is a bearer credential until it is consumed or
 * expires; the cluster keeps only its SHA-256 hash (`tokenHashOf`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createSha256, sha256 } from "../util/sha256.ts";
import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { decodeMessagePack, encodeMessagePack } from "../state_machine/msgpack_codec.ts";
import { INVITE_LIMITS, type InviteTicket } from "../state_machine/invites.ts";
import { COMMAND_LIMITS } from "../state_machine/commands.ts";
import { bytesEqual } from "../state_machine/byte_keys.ts";
import { isValidEndpointId } from "../transport/iroh.ts";
import { BootstrapInfoSchema } from "./bootstrap_info.ts";

/** What every ticket of this layout starts with. */
export const TICKET_PREFIX = "blx1";
/** Bytes of the random token. */
export const TOKEN_BYTES = INVITE_LIMITS.tokenBytes;
/** Most members a ticket lists: enough that one of them answers. */
export const TICKET_MEMBERS_MAX = 3;
/** Most addresses per member in a ticket (the first ones: the member's preferred). */
export const TICKET_ADDRESSES_MAX = 4;
/** Longest ticket accepted, in characters: checked before anything is decoded. */
export const TICKET_CHARS_MAX = INVITE_LIMITS.ticketCharsMax;
const ADDRESS_CHARS_MAX = 64;
const RELAY_URL_CHARS_MAX = 512;
const KEY_BYTES = 32;
const CHECKSUM_BYTES = 4;

export type { InviteTicket };

/** A ticket that cannot be read; the message says what is wrong with it. */
export class InviteTicketError extends Error {
  override name = "InviteTicketError";
}

const bytesOf = (length: number) =>
  z.custom<Uint8Array>((value) => value instanceof Uint8Array && value.length === length, {
    message: `expected ${length} bytes`,
  });

const ticketSchema = lazySchema(() =>
  z.tuple([
    z.string().check(z.minLength(1), z.maxLength(COMMAND_LIMITS.clusterIdLengthMax)),
    z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER)),
    bytesOf(TOKEN_BYTES),
    z.array(z.tuple([
      z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)),
      bytesOf(KEY_BYTES),
      z.array(z.string().check(z.minLength(1), z.maxLength(ADDRESS_CHARS_MAX))).check(
        z.maxLength(TICKET_ADDRESSES_MAX),
      ),
      z.nullable(z.string().check(z.minLength(1), z.maxLength(RELAY_URL_CHARS_MAX))),
    ])).check(z.minLength(1), z.maxLength(TICKET_MEMBERS_MAX)),
  ])
);

/** A fresh random token. */
export function newToken(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
}

/** The hash the cluster keeps instead of the token: SHA-256, lowercase hex. */
export function tokenHashOf(token: Uint8Array): string {
  return createSha256().update(token).digest("hex");
}

/**
 * The ticket's text. Members beyond `TICKET_MEMBERS_MAX` and addresses beyond
 * `TICKET_ADDRESSES_MAX` are left out; a member whose record does not fit a ticket
 * (an address or relay URL too long) is skipped. Throws `InviteTicketError` when no
 * member is left.
 */
export function encodeInviteTicket(ticket: InviteTicket): string {
  const members = ticket.members.flatMap((member) => {
    const addresses = member.addresses.slice(0, TICKET_ADDRESSES_MAX);
    const fits = addresses.every((address) => address.length <= ADDRESS_CHARS_MAX) &&
      (member.relayUrl === null || member.relayUrl.length <= RELAY_URL_CHARS_MAX) &&
      isValidEndpointId(member.p2pNodeId) && (addresses.length > 0 || member.relayUrl !== null);
    return fits
      ? [[
        member.nodeId,
        new Uint8Array(Buffer.from(member.p2pNodeId, "hex")),
        addresses,
        member.relayUrl,
      ]]
      : [];
  }).slice(0, TICKET_MEMBERS_MAX);
  if (members.length === 0) {
    throw new InviteTicketError("no member has an address or relay URL to put in a ticket");
  }
  return sealTicketBody(
    encodeMessagePack([ticket.clusterId, ticket.expiresAtMs, ticket.token, members]),
  );
}

/** The ticket text of the MessagePack `body`: prefix, body and checksum. */
export function sealTicketBody(body: Uint8Array): string {
  const checked = new Uint8Array(body.length + CHECKSUM_BYTES);
  checked.set(body);
  checked.set(checksumOf(body), body.length);
  return TICKET_PREFIX + Buffer.from(checked).toString("base64url");
}

/** Reads a ticket; throws `InviteTicketError` naming what is wrong. */
export function decodeInviteTicket(text: string): InviteTicket {
  const trimmed = text.trim();
  if (trimmed.length > TICKET_CHARS_MAX) {
    throw new InviteTicketError(
      `it has ${trimmed.length} characters, more than a ticket's ${TICKET_CHARS_MAX}`,
    );
  }
  const version = /^blx([0-9]+)/.exec(trimmed)?.[1];
  if (version === undefined) {
    throw new InviteTicketError(`it does not start with ${TICKET_PREFIX}: is it a ticket?`);
  }
  if (version !== "1") {
    throw new InviteTicketError(
      `it is a version ${version} ticket; this build reads ${TICKET_PREFIX} tickets: ` +
        "upgrade blixard, or ask for a ticket from a member of this version",
    );
  }
  const encoded = trimmed.slice(TICKET_PREFIX.length);
  if (encoded.length === 0) {
    throw new InviteTicketError("nothing follows blx1: copy the whole ticket");
  }
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) {
    throw new InviteTicketError(
      "it holds characters other than base64url after blx1: copy it again, whole",
    );
  }
  const bytes = new Uint8Array(Buffer.from(encoded, "base64url"));
  const body = bytes.subarray(0, Math.max(0, bytes.length - CHECKSUM_BYTES));
  if (
    bytes.length <= CHECKSUM_BYTES || !bytesEqual(checksumOf(body), bytes.subarray(body.length))
  ) {
    throw new InviteTicketError(
      "its checksum does not match: it was cut or changed; copy it again, whole",
    );
  }
  let value: unknown;
  try {
    value = decodeMessagePack(body);
  } catch {
    throw new InviteTicketError("its content is not a ticket's, though its checksum matches");
  }
  const parsed = ticketSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InviteTicketError(
      `its content is not a ticket's (${issue?.path.join(".") || "top"}: ${issue?.message})`,
    );
  }
  const [clusterId, expiresAtMs, token, rows] = parsed.data;
  const members = rows.map(([nodeId, key, addresses, relayUrl]) => {
    // The rules of a /bootstrap answer: an Iroh key, dialable addresses, an http(s) relay.
    const checked = BootstrapInfoSchema.safeParse({
      node_id: nodeId,
      p2p_node_id: Buffer.from(key).toString("hex"),
      p2p_addresses: addresses,
      p2p_relay_url: relayUrl,
    });
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw new InviteTicketError(
        `member ${nodeId}: ${issue?.path.join(".")}: ${issue?.message ?? "invalid"}`,
      );
    }
    const info = checked.data;
    return {
      nodeId,
      p2pNodeId: info.p2p_node_id,
      addresses: info.p2p_addresses,
      relayUrl: info.p2p_relay_url,
    };
  });
  return { clusterId, expiresAtMs, token: new Uint8Array(token), members };
}

function checksumOf(body: Uint8Array): Uint8Array {
  return sha256(body).subarray(0, CHECKSUM_BYTES);
}
