import assert from "node:assert/strict";
import { newToken } from "../../bootstrap/invite_ticket.ts";
import { bindLoopbackEndpoint, deadPeerAddress } from "../../transport/testing.ts";
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
