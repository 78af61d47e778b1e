import assert from "node:assert/strict";
import { P2pEndpoint } from "./p2p_endpoint.ts";
import { bindLoopbackEndpoint } from "./testing.ts";

/** An http URL on a loopback TCP port where nothing listens: a relay that never answers. */
function deadRelayUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return `http://127.0.0.1:${listener.addr.port}/`;
}

Deno.test("P2pEndpoint.homeRelayUrl() is null with relays off, and with a relay it has not reached", async () => {
  const relaysOff = await bindLoopbackEndpoint();
  const relayUrl = deadRelayUrl();
  // No relay server can run here: this one never answers, so the endpoint never has a home.
  const unreached = await P2pEndpoint.bind({
    secretKey: crypto.getRandomValues(new Uint8Array(32)),
    bindAddress: "127.0.0.1:0",
    relayUrl,
  });
  try {
    assert.equal(relaysOff.homeRelayUrl(), null);
    assert.equal(unreached.relayUrl, relayUrl, "the configured relay");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(unreached.homeRelayUrl(), null, "not the configured relay: it was never reached");
  } finally {
    await unreached.close();
    await relaysOff.close();
  }
});
