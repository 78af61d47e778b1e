import assert from "node:assert/strict";
import { eventually } from "../transport/testing.ts";
import { encodeAdvert } from "./advert.ts";
import { MdnsResponder, SERVICE_TYPE } from "./mdns_responder.ts";
import {
  FakeMulticastSocket,
  FAST_RESPONDER_TIMING,
  type SentPacket,
  startTestDiscovery,
  testAdvert,
} from "./testing.ts";

const encoder = new TextEncoder();
const RECORDS = {
  nodeId: 7,
  p2pNodeId: "0123456789abcdef".repeat(4),
  p2pPort: 7007,
  hostAddress: "192.0.2.7",
};

function startDiscovery(socket: FakeMulticastSocket, oneShotSocket?: FakeMulticastSocket) {
  return startTestDiscovery(socket, {
    ...(oneShotSocket === undefined ? {} : { oneShotSocket }),
    responderTiming: FAST_RESPONDER_TIMING,
  });
}

function isBrowse(sent: SentPacket): boolean {
  return sent.kind === "query" && sent.packet.questions?.[0]?.type === "PTR";
}

Deno.test("a node's browse query lists its own instance as a known answer, so its own responder does not answer it (RFC 6762 §7.1)", async () => {
  const socket = new FakeMulticastSocket();
  const discovery = await startDiscovery(socket);
  try {
    // Both announcements (RFC 6762 §8.3) are out: nothing else is multicast unasked.
    await eventually("announced twice", () => socket.responses().length >= 2);
    const browse = socket.sent.find(isBrowse)!;
    assert.deepEqual(browse.packet.answers?.[0], {
      name: SERVICE_TYPE,
      type: "PTR",
      ttl: 120,
      data: discovery.instanceName,
    });
    // Past the multicast interval since the last announcement: an answer now would go out
    // in the same turn.
    await new Promise((resolve) => setTimeout(resolve, FAST_RESPONDER_TIMING.multicastIntervalMs));
    const before = socket.responses().length;
    socket.deliver("query", browse.packet); // its own query, looped back
    assert.equal(socket.responses().length, before, "its own browse is not answered");
    // The same question without the known answer (another node's) is answered at once.
    socket.deliver("query", { questions: browse.packet.questions ?? [] });
    assert.equal(socket.responses().length, before + 1, "another node's browse is answered");
  } finally {
    await discovery.stop();
  }
});

Deno.test("a starting node sends one PTR query from its one-shot socket at once, keeps what is answered to it, and closes that socket", async () => {
  const socket = new FakeMulticastSocket();
  const oneShot = new FakeMulticastSocket();
  const discovery = await startDiscovery(socket, oneShot);
  try {
    assert.equal(oneShot.sent.length, 1);
    assert.ok(isBrowse(oneShot.sent[0]!), "a PTR query for the service");
    assert.equal(oneShot.sent[0]!.packet.questions?.[0]?.name, SERVICE_TYPE);
    const advert = testAdvert(2, "c1");
    const instance = `seed.${SERVICE_TYPE}`;
    // A legacy unicast answer (RFC 6762 §6.7): PTR, and the TXT among the additionals.
    oneShot.deliver("response", {
      answers: [{ name: SERVICE_TYPE, type: "PTR", ttl: 10, data: instance }],
      additionals: [{
        name: instance,
        type: "TXT",
        ttl: 10,
        data: encodeAdvert(advert).map((string) => encoder.encode(string)),
      }],
    });
    await eventually("the seed is a candidate", () => discovery.candidates().length === 1);
    assert.equal(discovery.candidates()[0]!.advert.clusterId, "c1");
  } finally {
    await discovery.stop();
  }
  assert.equal(oneShot.destroyed, true);
  assert.equal(socket.destroyed, true);
});

Deno.test("a responder that has just multicast its records answers a one-shot query by unicast at once, while a multicast query waits for the second to end (RFC 6762 §6, §6.7)", async () => {
  const socket = new FakeMulticastSocket();
  const timing = { ...FAST_RESPONDER_TIMING, multicastIntervalMs: 60_000 };
  const responder = new MdnsResponder(socket, { records: RECORDS, txt: ["v=1"], timing });
  await responder.start();
  try {
    const announced = socket.responses().length;
    assert.ok(announced > 0, "announced");
    const question = { questions: [{ name: SERVICE_TYPE, type: "PTR" }] };
    socket.deliver("query", question);
    assert.equal(socket.responses().length, announced, "the multicast answer waits");
    socket.deliver("query", { id: 9, ...question }, { address: "192.0.2.9", port: 40000 });
    assert.equal(socket.responses().length, announced + 1, "the one-shot query is answered now");
    const answer = socket.responses().at(-1)!;
    assert.deepEqual(answer.to, { address: "192.0.2.9", port: 40000 });
    assert.equal(answer.packet.answers?.[0]?.data, responder.instanceName);
    assert.ok(
      answer.packet.additionals?.some((record) => record.type === "TXT"),
      "the TXT comes with it",
    );
  } finally {
    await responder.stop();
  }
});
