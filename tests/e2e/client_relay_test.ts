/**
 * `BlixardClient` takes a relay URL for its own endpoint. No relay server can run on these
 * machines, so what is tested is the side without one: a node started with `--relay-url`
 * of a relay it never reaches advertises `p2p_relay_url: null` (it has no home relay) in
 * `/bootstrap` and in its replicated member record, and a client configured with that relay
 * still finds the node and talks to it directly.
 */

import assert from "node:assert/strict";
import { BlixardClient } from "../../src/client/client.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup } from "../helpers/node_process.ts";

Deno.test("a relay never reached is neither advertised nor recorded in the member info, and a BlixardClient given it works over the direct path", async () => {
  const group = new NodeGroup();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  const relayUrl = `http://127.0.0.1:${listener.addr.port}/`;
  try {
    // The node is given the same unreachable relay: /bootstrap must not advertise it.
    const node = await group.start({ id: 1, args: ["--relay-url", relayUrl] });
    await waitForVoters(node, 1);
    assert.equal((await node.getJson("/bootstrap")).p2p_relay_url, null);
    const client = await BlixardClient.connect(node.address, { relayUrl, timeoutMs: 15_000 });
    try {
      // The member record holds the relay the endpoint reached: none, not the flag's.
      assert.equal((await client.status()).members[0]?.p2p_relay_url, null);
      await client.put("relay", "direct");
      assert.equal(new TextDecoder().decode((await client.get("relay"))!), "direct");
    } finally {
      await client.close();
    }
  } finally {
    await group.cleanup();
  }
});
