import { strictEqual } from "node:assert/strict";
import { COMMAND_LIMITS } from "../state_machine/commands.ts";
import { MEMBER_INFO_LIMITS } from "../state_machine/member_info.ts";
import { memberAddressSchema, PUT_RPC } from "./cluster_rpcs.ts";

const P2P_NODE_ID = "a".repeat(64);

function put(clientId: string): unknown {
  return {
    key: new Uint8Array([1]),
    value: new Uint8Array([2]),
    request: { clientId, sequence: 1 },
  };
}

Deno.test("cluster RPCs take a client id as long as the state machine does, and no longer", () => {
  const longest = "c".repeat(COMMAND_LIMITS.clientIdLengthMax);
  strictEqual(PUT_RPC.request.safeParse(put(longest)).success, true);
  strictEqual(PUT_RPC.request.safeParse(put(`${longest}c`)).success, false);
});

Deno.test("cluster RPCs bound a member's addresses by the state machine's MEMBER_INFO_LIMITS", () => {
  const member = (addresses: string[], relayUrl: string | null) => ({
    nodeId: 2,
    p2pNodeId: P2P_NODE_ID,
    addresses,
    relayUrl,
  });
  const address = "x".repeat(MEMBER_INFO_LIMITS.addressLengthMax);
  const addresses = Array.from({ length: MEMBER_INFO_LIMITS.addressesMax }, () => address);
  const relayUrl = "r".repeat(MEMBER_INFO_LIMITS.relayUrlLengthMax);
  strictEqual(memberAddressSchema.safeParse(member(addresses, relayUrl)).success, true);
  strictEqual(memberAddressSchema.safeParse(member([...addresses, address], null)).success, false);
  strictEqual(memberAddressSchema.safeParse(member([`${address}x`], null)).success, false);
  strictEqual(memberAddressSchema.safeParse(member([], `${relayUrl}r`)).success, false);
});
