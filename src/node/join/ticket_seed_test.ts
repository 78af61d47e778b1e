import assert from "node:assert/strict";
import { newToken } from "../../bootstrap/invite_ticket.ts";
import { connectSeed } from "../../bootstrap/bootstrap_client.ts";
import { PING_RPC, pingHandler } from "../../transport/ping_rpc.ts";
import { RpcServer } from "../../transport/rpc.ts";
import { bindLoopbackEndpoint, deadPeerAddress, peerAddressOf } from "../../transport/testing.ts";
import { startSeedSearch, TicketMembersGoneError } from "./joiner.ts";

Deno.test("a ticket whose listed members all fail to answer is refused saying so, naming each member", async () => {
  const endpoint = await bindLoopbackEndpoint();
  try {
    const gone = await deadPeerAddress();
    const ticket = {
      clusterId: "c-gone",
      expiresAtMs: Date.now() + 60_000,
      token: newToken(),
      members: [{ nodeId: 3, ...gone, relayUrl: null }],
    };
    await assert.rejects(
      startSeedSearch({ peers: [], endpoint, clusterSecret: null, ticket }, 1_500),
      (error: Error) => {
        assert.ok(error instanceof TicketMembersGoneError, String(error));
        assert.match(error.message, /^none of the 1 members the ticket lists answered \(node 3 \(/);
        assert.match(error.message, /left cluster c-gone or be down; ask a current member/);
        return true;
      },
    );
  } finally {
    await endpoint.close();
  }
});

Deno.test("a ticket's member is taken as the seed on its key alone, with no ping; a /bootstrap seed is pinged", async () => {
  const member = await bindLoopbackEndpoint();
  const joiner = await bindLoopbackEndpoint();
  const server = new RpcServer();
  let pings = 0;
  const answer = pingHandler({ nodeId: 3, p2pNodeId: member.nodeId });
  server.register(PING_RPC, (request, context) => {
    pings++;
    return answer(request, context);
  });
  server.serve(member);
  try {
    const address = peerAddressOf(member);
    const ticket = {
      clusterId: "c-pinned",
      expiresAtMs: Date.now() + 60_000,
      token: newToken(),
      members: [{ nodeId: 3, ...address, relayUrl: null }],
    };
    const seed = await startSeedSearch(
      { peers: [], endpoint: joiner, clusterSecret: null, ticket },
      10_000,
    );
    assert.equal(seed.connection.remoteNodeId, member.nodeId);
    assert.equal(seed.info.node_id, 3);
    seed.connection.close("test done");
    assert.equal(pings, 0, "the ticket's key is the check");
    const info = {
      node_id: 3,
      p2p_node_id: member.nodeId,
      p2p_addresses: address.addresses,
      p2p_relay_url: null,
      cluster_id: "c-pinned",
    };
    const pinged = await connectSeed(info, "seed", {
      endpoint: joiner,
      deadlineMs: performance.now() + 10_000,
      signal: new AbortController().signal,
      advertisedBy: "/bootstrap",
    });
    pinged.connection.close("test done");
    assert.equal(pings, 1, "a seed from /bootstrap or mDNS is still pinged");
  } finally {
    await joiner.close();
    await member.close();
  }
});
