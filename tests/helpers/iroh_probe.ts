/**
 * A real Iroh connection attempt, as a child process that a test runs inside a network
 * namespace: `iroh_probe.ts P2P_ID TIMEOUT_MS ADDRESS…` dials `P2P_ID` for `blixard/rpc/1`
 * at each address alone, within `TIMEOUT_MS`, and prints one JSON object: each address and
 * `"connected"` or the error code (`connect_timeout`, `connect_failed`, …).
 *
 * Each address gets an endpoint of its own (Iroh merges the addresses it knows for one
 * peer, so one endpoint could reach an address through another), bound to `[::]:0` to
 * dial both IP families.
 *
 * @module
 */

import { RPC_ALPN } from "../../src/transport/alpn.ts";
import { P2pEndpoint } from "../../src/transport/p2p_endpoint.ts";
import { TransportError } from "../../src/transport/transport_error.ts";

/** Runs the probe as the test spawns it; see the module doc. */
export async function probe(
  p2pNodeId: string,
  timeoutMs: number,
  addresses: string[],
): Promise<Record<string, string>> {
  const outcomes = await Promise.all(addresses.map(async (address) => {
    const endpoint = await P2pEndpoint.bind({
      secretKey: crypto.getRandomValues(new Uint8Array(32)),
      bindAddress: "[::]:0",
      relayUrl: null,
    });
    try {
      const peer = { p2pNodeId, addresses: [address], relayUrl: null };
      const connection = await endpoint.connect(peer, RPC_ALPN, { timeoutMs });
      connection.close("probe done");
      return [address, "connected"];
    } catch (error) {
      return [address, error instanceof TransportError ? error.code : String(error)];
    } finally {
      await endpoint.close();
    }
  }));
  return Object.fromEntries(outcomes);
}

if (import.meta.main) {
  const [p2pNodeId, timeoutMs, ...addresses] = Deno.args;
  console.log(JSON.stringify(await probe(p2pNodeId!, Number(timeoutMs), addresses)));
  Deno.exit(0);
}
