import assert from "node:assert/strict";
import { NodeMetrics } from "../../http/metrics.ts";
import type { P2pEndpoint, P2pEvent } from "../../transport/p2p_endpoint.ts";
import { wireEndpointMetrics } from "./endpoint_metrics.ts";

Deno.test("wireEndpointMetrics() counts connections dropped outside the bind address, from 0", async () => {
  let emit: (event: P2pEvent) => void = () => assert.fail("no listener registered");
  const endpoint = {
    onEvent(listener: (event: P2pEvent) => void) {
      emit = listener;
      return () => {};
    },
  } as unknown as P2pEndpoint;
  const metrics = new NodeMetrics({ defaultMetrics: false });
  wireEndpointMetrics(endpoint, metrics);
  assert.match((await metrics.render()).body, /^blixard_p2p_incoming_outside_bind_total 0$/m);
  const dropped: P2pEvent = {
    type: "connection_failed",
    direction: "incoming",
    alpn: null,
    reason: "outside_bind",
  };
  emit(dropped);
  emit(dropped);
  const body = (await metrics.render()).body;
  assert.match(body, /^blixard_p2p_incoming_outside_bind_total 2$/m);
  assert.match(
    body,
    /^blixard_p2p_connections_total\{direction="incoming",alpn="unknown",outcome="refused"\} 2$/m,
  );
});
