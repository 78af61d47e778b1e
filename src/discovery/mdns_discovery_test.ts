import assert from "node:assert/strict";
import { ClusterSecret } from "../auth/cluster_secret.ts";
import { NodeMetrics } from "../http/metrics.ts";
import { eventually } from "../transport/testing.ts";
import { encodeAdvert } from "./advert.ts";
import { signAdvert } from "./advert_signature.ts";
import type { MdnsDiscoveryOptions } from "./mdns_discovery.ts";
import { SERVICE_TYPE } from "./mdns_responder.ts";
import { FakeMulticastSocket, startTestDiscovery, testAdvert } from "./testing.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("discovery test secret 0001"));
const OTHER_SECRET = await ClusterSecret.fromBytes(encoder.encode("discovery test secret 0002"));

function txt(instance: string, strings: string[], ttl = 120) {
  return {
    answers: [
      { name: SERVICE_TYPE, type: "PTR", ttl, data: instance },
      { name: instance, type: "TXT", ttl, data: strings.map((string) => encoder.encode(string)) },
    ],
  };
}

function startDiscovery(
  socket: FakeMulticastSocket,
  metrics: NodeMetrics,
  options: Partial<MdnsDiscoveryOptions> = {},
) {
  return startTestDiscovery(socket, {
    clusterSecret: SECRET,
    clusterIdFilter: "c1",
    metrics,
    ...options,
  });
}

async function rejected(metrics: NodeMetrics): Promise<Record<string, number>> {
  const { body } = await metrics.render();
  const counts: Record<string, number> = {};
  for (
    const match of body.matchAll(/blixard_mdns_records_rejected_total\{reason="(\w+)"\} (\d+)/g)
  ) {
    counts[match[1]!] = Number(match[2]);
  }
  return counts;
}

Deno.test("MdnsDiscovery keeps signed adverts as verified, refuses the rest by reason, and forgets on goodbye", async () => {
  const socket = new FakeMulticastSocket();
  const metrics = new NodeMetrics({ defaultMetrics: false });
  const discovery = await startDiscovery(socket, metrics);
  try {
    assert.deepEqual(socket.sent[0]?.packet.questions, [{ name: SERVICE_TYPE, type: "PTR" }]);
    const nowMs = Date.now();
    const good = await signAdvert(testAdvert(2, "c1"), { secret: SECRET, nowMs });
    const forged = await signAdvert(testAdvert(3, "c1"), { secret: OTHER_SECRET, nowMs });
    const unsigned = testAdvert(4, "c1");
    const otherCluster = await signAdvert(testAdvert(5, "c9"), { secret: SECRET, nowMs });
    const stale = await signAdvert(testAdvert(6, "c1"), {
      secret: SECRET,
      nowMs: nowMs - 3_600_000,
    });
    const instances = ["good", "forged", "unsigned", "other", "stale"].map((name) =>
      `${name}.${SERVICE_TYPE}`
    );
    [good, forged, unsigned, otherCluster, stale].forEach((advert, index) =>
      socket.deliver("response", txt(instances[index]!, encodeAdvert(advert)))
    );
    socket.deliver("response", txt(`junk.${SERVICE_TYPE}`, ["v=1", "node=x"]));
    await eventually("five candidates", () => discovery.candidates().length === 5);
    assert.deepEqual(
      discovery.statusJson().candidates.map((candidate) => [candidate.node_id, candidate.verdict]),
      [[2, "verified"], [3, "bad_signature"], [4, "unsigned"], [5, "other_cluster"], [6, "stale"]],
    );
    assert.deepEqual(await rejected(metrics), {
      bad_signature: 1,
      unsigned: 1,
      other_cluster: 1,
      stale: 1,
      malformed: 1,
    });
    // A forged record for the verified instance does not replace it.
    socket.deliver("response", txt(instances[0]!, encodeAdvert(forged)));
    for (let poll = 0; poll < 400 && (await rejected(metrics)).bad_signature !== 2; poll++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal((await rejected(metrics)).bad_signature, 2);
    assert.equal(discovery.candidates()[0]?.advert.p2pNodeId, good.p2pNodeId);
    // Goodbye: TTL 0.
    socket.deliver("response", txt(instances[0]!, encodeAdvert(good), 0));
    assert.ok(!discovery.candidates().some((candidate) => candidate.instance === instances[0]));
  } finally {
    await discovery.stop();
  }
  assert.equal(socket.destroyed, true);
});

Deno.test("MdnsDiscovery counts a probing node from the TXT it proposes, briefly, and browses again listing what it knows (RFC 6762 §7.1)", async () => {
  const socket = new FakeMulticastSocket();
  const metrics = new NodeMetrics({ defaultMetrics: false });
  let nowMs = Date.now();
  const discovery = await startDiscovery(socket, metrics, {
    clusterIdFilter: null,
    now: () => nowMs,
  });

  try {
    const probing = `probing.${SERVICE_TYPE}`;
    const advert = await signAdvert(testAdvert(2, null), { secret: SECRET, nowMs });
    const strings = encodeAdvert(advert).map((string) => encoder.encode(string));
    socket.deliver("query", {
      questions: [{ name: probing, type: "ANY" }],
      authorities: [{ name: probing, type: "TXT", ttl: 120, data: strings }],
    });
    // A forged proposal is refused like a forged answer.
    const forged = await signAdvert(testAdvert(3, null), { secret: OTHER_SECRET, nowMs });
    socket.deliver("query", {
      questions: [{ name: `forged.${SERVICE_TYPE}`, type: "ANY" }],
      authorities: [{
        name: `forged.${SERVICE_TYPE}`,
        type: "TXT",
        ttl: 120,
        data: encodeAdvert(forged).map((string) => encoder.encode(string)),
      }],
    });
    await eventually("two candidates", () => discovery.candidates().length === 2);
    assert.deepEqual(
      discovery.candidates().map((candidate) => [candidate.instance, candidate.verdict]),
      [[probing, "verified"], [`forged.${SERVICE_TYPE}`, "bad_signature"]],
    );
    const probed = discovery.candidates()[0]!;
    assert.ok(probed.expiresAtMs - probed.seenAtMs <= 3_000, "tentative: a short life");

    const announced = `announced.${SERVICE_TYPE}`;
    const other = await signAdvert(testAdvert(4, "c1"), { secret: SECRET, nowMs });
    socket.deliver("response", txt(announced, encodeAdvert(other)));
    await eventually("three candidates", () => discovery.candidates().length === 3);
    nowMs += 50_000; // 70 s of 120 left on the announced one; the probed ones expired.
    const browses = () =>
      socket.sent.filter((sent) =>
        sent.kind === "query" && sent.packet.questions?.[0]?.type === "PTR"
      );
    const before = browses().length;
    await eventually("the next browse query", () => browses().length > before, {
      timeoutMs: 5_000,
    });
    assert.deepEqual(browses().at(-1)!.packet.answers, [
      { name: SERVICE_TYPE, type: "PTR", ttl: 120, data: discovery.instanceName },
      { name: SERVICE_TYPE, type: "PTR", ttl: 70, data: announced },
    ]);
  } finally {
    await discovery.stop();
  }
});
