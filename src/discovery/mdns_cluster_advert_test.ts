/**
 * `MdnsDiscovery.advertiseClusterIdOnceApplied`: a node's cluster id goes into its advert
 * in the Ready pass that applied it, not at the next poll of the advert. The founder of a
 * `--bootstrap-expect` formation is still probing then, so the advert goes out in a probe
 * (`mdns_responder_update_test.ts`).
 */

import assert from "node:assert/strict";
import { eventually } from "../transport/testing.ts";
import { FakeMulticastSocket, FAST_RESPONDER_TIMING, startTestDiscovery } from "./testing.ts";

/** The probes sent so far (queries that propose records; the browse queries propose none). */
function probes(socket: FakeMulticastSocket) {
  return socket.sent.filter((sent) =>
    sent.kind === "query" && (sent.packet.authorities ?? []).length > 0
  );
}

/** The probes sent so far that propose a TXT holding `cluster=<clusterId>`. */
function probesWithCluster(socket: FakeMulticastSocket, clusterId: string): number {
  return probes(socket).filter((probe) =>
    probe.packet.authorities!.some((record) =>
      record.type === "TXT" && (record.data as string[]).includes(`cluster=${clusterId}`)
    )
  ).length;
}

/** Lets the promises in flight settle, without a turn of the timers (the advert's poll). */
async function settlePromises(): Promise<void> {
  for (let turn = 0; turn < 50; turn++) await Promise.resolve();
}

Deno.test("MdnsDiscovery advertises the cluster id in the Ready pass that applied it, once", async () => {
  let clusterId: string | null = null;
  let reads = 0;
  const socket = new FakeMulticastSocket();
  const discovery = await startTestDiscovery(socket, {
    source: {
      clusterId: () => {
        reads++;
        return clusterId;
      },
      addresses: () => ["192.0.2.1:7001"],
    },
    // Its first probe at once, the next ones long after the test: it stays probing.
    responderTiming: { ...FAST_RESPONDER_TIMING, probeIntervalMs: 60_000 },
  });
  try {
    const listeners: { afterReady?: () => void }[] = [];
    discovery.advertiseClusterIdOnceApplied({ on: (events) => listeners.push(events) });
    const ready = () => listeners.forEach((listener) => listener.afterReady?.());
    await eventually("the first probe", () => probes(socket).length > 0);

    ready();
    await settlePromises();
    const probesBefore = probes(socket).length;
    assert.equal(probesWithCluster(socket, "c1"), 0, "no cluster yet");

    clusterId = "c1";
    ready();
    await settlePromises();
    assert.equal(probesWithCluster(socket, "c1"), 1, "proposed in a probe at once");

    const readsBefore = reads;
    ready();
    await settlePromises();
    assert.equal(probes(socket).length, probesBefore + 1, "nothing more on the next passes");
    assert.equal(reads, readsBefore, "and nothing more read: a Ready pass costs nothing now");
  } finally {
    await discovery.stop();
  }
});
