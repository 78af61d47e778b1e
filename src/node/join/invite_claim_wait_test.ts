import assert from "node:assert/strict";
import { newToken } from "../../bootstrap/invite_ticket.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { JOIN_BY_INVITE_RPC } from "../../transport/invite_rpcs.ts";
import { PING_RPC, pingHandler } from "../../transport/ping_rpc.ts";
import { RpcServer } from "../../transport/rpc.ts";
import { bindLoopbackEndpoint } from "../../transport/testing.ts";
import { claimInvite } from "./invite_join.ts";

// The member answers the ticket only once the joiner has done its waiting work: if
// `whileWaiting` ran only after the answer (or never), the claim could not complete.
Deno.test("claimInvite() runs whileWaiting while the leader has the ticket and has not answered", async () => {
  const member = await bindLoopbackEndpoint();
  const joiner = await bindLoopbackEndpoint();
  const waited = Promise.withResolvers<void>();
  let requests = 0;
  const server = new RpcServer();
  server.register(PING_RPC, pingHandler({ nodeId: 1, p2pNodeId: member.nodeId }));
  server.register(JOIN_BY_INVITE_RPC, async (request) => {
    requests++;
    await waited.promise;
    return { clusterId: request.clusterId, leaderId: 1, index: 7, members: [], secret: null };
  });
  server.serve(member);
  const self: MemberInfo = {
    nodeId: 2,
    p2pNodeId: joiner.nodeId,
    addresses: joiner.addresses(),
    relayUrl: null,
  };
  const ticket = {
    clusterId: "c-1",
    expiresAtMs: Date.now() + 60_000,
    token: newToken(),
    members: [{
      nodeId: 1,
      p2pNodeId: member.nodeId,
      addresses: member.addresses(),
      relayUrl: null,
    }],
  };
  let waits = 0;
  try {
    const claimed = await claimInvite(ticket, {
      endpoint: joiner,
      self,
      joinTimeoutMs: 30_000,
      signal: AbortSignal.timeout(30_000),
      whileWaiting: () => {
        waits++;
        waited.resolve();
      },
    });
    assert.equal(claimed.clusterId, "c-1");
    assert.equal(waits, 1);
    assert.equal(requests, 1);
  } finally {
    await joiner.close();
    await member.close();
  }
});
