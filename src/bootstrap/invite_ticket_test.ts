import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import {
  decodeInviteTicket,
  encodeInviteTicket,
  type InviteTicket,
  InviteTicketError,
  newToken,
  TICKET_CHARS_MAX,
  tokenHashOf,
} from "./invite_ticket.ts";

function ticket(): InviteTicket {
  return {
    clusterId: "6f1c2d9e-2b0a-4c1e-9a57-0d6e8c1f3a42",
    expiresAtMs: 1_700_000_900_000,
    token: newToken(),
    members: [1, 2, 3, 4].map((nodeId) => ({
      nodeId,
      p2pNodeId: validKey(nodeId),
      addresses: [`192.168.1.${nodeId}:7001`, `[fd00::${nodeId}]:7001`],
      relayUrl: nodeId === 1 ? "https://relay.example.com./" : null,
    })),
  };
}

/** A valid Iroh endpoint id (an ed25519 public key). */
function validKey(seed: number): string {
  return KEYS[seed % KEYS.length]!;
}
const KEYS = [
  "ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6",
  "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
  "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
];

Deno.test("an invite ticket round-trips, keeps at most three members, and stays a few hundred characters", () => {
  const original = ticket();
  const text = encodeInviteTicket(original);
  ok(text.startsWith("blx1"));
  ok(text.length < 600, `${text.length} characters`);
  const decoded = decodeInviteTicket(`  ${text}\n`);
  deepStrictEqual(decoded, { ...original, members: original.members.slice(0, 3) });
});

Deno.test("a malformed ticket is refused with what is wrong with it", () => {
  const text = encodeInviteTicket(ticket());
  const refused = (input: string, pattern: RegExp) =>
    throws(() => decodeInviteTicket(input), (error: Error) => {
      ok(error instanceof InviteTicketError, String(error));
      ok(pattern.test(error.message), error.message);
      return true;
    });
  refused("hello", /does not start with blx1/);
  refused(`blx2${text.slice(4)}`, /version 2 ticket/);
  refused(text.slice(0, -3), /checksum/);
  refused(`${text.slice(0, 40)}${text[40] === "A" ? "B" : "A"}${text.slice(41)}`, /checksum/);
  refused(`${text.slice(0, 20)}!${text.slice(21)}`, /base64url/);
  refused("blx1" + "A".repeat(TICKET_CHARS_MAX), /more than a ticket's/);
  refused("blx1", /nothing follows/);
  refused("blx1AAA", /checksum/);
});

Deno.test("tokenHashOf() is the SHA-256 hex of the token, different for different tokens", () => {
  strictEqual(
    tokenHashOf(new Uint8Array(32)),
    "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925",
  );
  ok(tokenHashOf(newToken()) !== tokenHashOf(newToken()));
});
