/**
 * Turns the P2P endpoint's connection events into `blixard_p2p_connections_*` metrics.
 *
 * @module
 */

import { defineCounter, type NodeMetrics } from "../../http/metrics.ts";
import type { P2pEndpoint, P2pEvent } from "../../transport/p2p_endpoint.ts";

/** Records every connection opened, closed or failed on `endpoint` in `metrics`. */
export function wireEndpointMetrics(endpoint: P2pEndpoint, metrics: NodeMetrics): void {
  const outsideBind = defineCounter(metrics.registry, {
    name: "p2p_incoming_outside_bind_total",
    help: "Incoming P2P connections dropped because they arrived outside the --bind address.",
    labelNames: [],
  });
  outsideBind.inc(0);
  endpoint.onEvent((event: P2pEvent) => {
    switch (event.type) {
      case "connection_opened":
        metrics.recordP2pConnection({
          direction: event.direction,
          alpn: event.alpn,
          outcome: "ok",
        });
        metrics.p2pConnectionOpened(event.alpn);
        return;
      case "connection_closed":
        metrics.p2pConnectionClosed(event.alpn);
        return;
      case "connection_failed":
        if (event.reason === "outside_bind") outsideBind.inc();
        metrics.recordP2pConnection({
          direction: event.direction,
          alpn: event.alpn ?? "unknown",
          outcome: event.reason === "connect_timeout"
            ? "timeout"
            : event.reason === "over_limit" || event.reason === "outside_bind" ||
                event.reason === "stranger_limit"
            ? "refused"
            : "failed",
        });
        return;
    }
  });
}
