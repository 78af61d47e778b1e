import assert from "node:assert/strict";
import { eventually } from "../transport/testing.ts";
import { answerDelayMs, MdnsResponder, RFC6762_TIMING, SERVICE_TYPE } from "./mdns_responder.ts";
import type { DnsRecord } from "./multicast_socket.ts";
import { FakeMulticastSocket, FAST_RESPONDER_TIMING } from "./testing.ts";

const RECORDS = {
  nodeId: 5,
  p2pNodeId: "fedcba9876543210".repeat(4),
  p2pPort: 7005,
  hostAddress: "192.0.2.5",
};
const PTR: DnsRecord = { name: SERVICE_TYPE, type: "PTR", ttl: 120, data: "x" };
const SRV: DnsRecord = {
  name: "x",
  type: "SRV",
  ttl: 120,
  data: { priority: 0, weight: 0, port: 1, target: "x.local" },
};
const TXT: DnsRecord = { name: "x", type: "TXT", ttl: 120, data: ["v=1"] };

Deno.test("answerDelayMs() delays an answer with a shared PTR by 20-120 ms at random, and one of unique records not at all", () => {
  const at = (random: number, answers: DnsRecord[]) =>
    answerDelayMs(answers, { timing: RFC6762_TIMING, random: () => random });
  assert.equal(at(0, [PTR]), 20);
  assert.equal(at(0.5, [PTR, SRV]), 70);
  assert.ok(at(0.999, [PTR]) < 120);
  assert.equal(at(0.5, [SRV, TXT]), 0);
  assert.equal(at(0.5, []), 0);
});

Deno.test("MdnsResponder holds back an answer to a PTR query for its random delay, and answers a query for its unique records at once", async () => {
  const socket = new FakeMulticastSocket();
  const timing = {
    ...FAST_RESPONDER_TIMING,
    sharedAnswerDelayMinMs: 20,
    sharedAnswerDelayMaxMs: 120,
  };
  const draws: number[] = [];
  const random = () => {
    draws.push(0.5);
    return 0.5;
  };
  const responder = new MdnsResponder(socket, { records: RECORDS, txt: ["v=1"], timing, random });
  await responder.start();
  const pause = () => new Promise((resolve) => setTimeout(resolve, timing.multicastIntervalMs));
  try {
    // Past the multicast interval, so that only the shared-answer delay can hold it back.
    await pause();
    const before = socket.responses().length;
    const drawsBefore = draws.length;
    socket.deliver("query", { questions: [{ name: SERVICE_TYPE, type: "PTR" }] });
    assert.equal(socket.responses().length, before, "not answered within the same turn");
    assert.equal(draws.length, drawsBefore + 1, "the delay came from the injected source");
    await eventually("the delayed PTR answer", () => socket.responses().length > before);
    assert.equal(socket.responses().at(-1)!.packet.answers?.[0]?.type, "PTR");

    await pause();
    const sent = socket.responses().length;
    socket.deliver("query", { questions: [{ name: responder.instanceName, type: "TXT" }] });
    assert.equal(socket.responses().length, sent + 1, "a unique record is answered at once");
    assert.equal(socket.responses().at(-1)!.packet.answers?.[0]?.type, "TXT");
  } finally {
    await responder.stop();
  }
});
