import assert from "node:assert/strict";
import { eventually } from "../transport/testing.ts";
import { MdnsResponder, SERVICE_TYPE } from "./mdns_responder.ts";
import { FakeMulticastSocket, FAST_RESPONDER_TIMING, TEST_RESPONDER_RECORDS } from "./testing.ts";

const RECORDS = TEST_RESPONDER_RECORDS;
const TXT = ["v=1", "cluster=", "node=4"];

function typesOf(records: { type: string }[] | undefined): string[] {
  return (records ?? []).map((record) => record.type);
}

Deno.test("MdnsResponder probes its name three times, announces PTR/SRV/TXT/A, answers, and says goodbye with TTL 0", async () => {
  const socket = new FakeMulticastSocket();
  // The RFC's second between multicasts: the checks of the deferred answer need the time.
  const timing = { ...FAST_RESPONDER_TIMING, multicastIntervalMs: 1_000 };
  const responder = new MdnsResponder(socket, { records: RECORDS, txt: TXT, timing });
  assert.equal(responder.instanceName, `blixard-4-01234567.${SERVICE_TYPE}`);
  const started = responder.start();
  // Nothing is answered while probing (RFC 6762 §8.1).
  socket.deliver("query", { questions: [{ name: SERVICE_TYPE, type: "PTR" }] });
  await eventually("announced", () => socket.responses().length > 0);
  const probes = socket.sent.filter((sent) => sent.kind === "query");
  assert.equal(probes.length, 3);
  assert.equal(probes[0]!.packet.questions?.[0]?.name, responder.instanceName);
  const announcement = socket.responses()[0]!;
  assert.equal(announcement.to, null);
  assert.deepEqual(typesOf(announcement.packet.answers), ["PTR", "SRV", "TXT", "A", "PTR"]);
  const srv = announcement.packet.answers?.find((record) => record.type === "SRV");
  assert.deepEqual(srv?.data, {
    priority: 0,
    weight: 0,
    port: 7004,
    target: "blixard-4-01234567.local",
  });
  await started;

  // Announced less than a second ago: the answer waits for the second to end (RFC 6762 §6),
  // and one deferred answer serves every query meanwhile.
  const announced = socket.responses().length;
  socket.deliver("query", { questions: [{ name: "_Blixard._UDP.local", type: "PTR" }] });
  socket.deliver("query", { questions: [{ name: SERVICE_TYPE, type: "PTR" }] });
  assert.equal(socket.responses().length, announced);
  await eventually("the deferred answer", () => socket.responses().length > announced);
  const deferred = socket.responses().at(-1)!;
  assert.equal(deferred.to, null);
  assert.deepEqual(typesOf(deferred.packet.answers), ["PTR"]);
  assert.deepEqual(typesOf(deferred.packet.additionals), ["SRV", "TXT", "A", "PTR"]);
  assert.equal(socket.responses().length, announced + 1);
  // A second later, a query is answered at once: the record asked, the rest as additionals.
  await new Promise((resolve) => setTimeout(resolve, timing.multicastIntervalMs));
  socket.deliver("query", { questions: [{ name: "_Blixard._UDP.local", type: "PTR" }] });
  const answer = socket.responses().at(-1)!;
  assert.deepEqual(typesOf(answer.packet.answers), ["PTR"]);
  assert.deepEqual(typesOf(answer.packet.additionals), ["SRV", "TXT", "A", "PTR"]);
  assert.equal(answer.to, null);

  const before = socket.responses().length;
  socket.deliver("query", { questions: [{ name: "other._tcp.local", type: "PTR" }] });
  assert.equal(socket.responses().length, before);

  await responder.stop();
  const goodbye = socket.responses().at(-1)!;
  assert.ok((goodbye.packet.answers ?? []).length >= 4);
  assert.ok(goodbye.packet.answers!.every((record) => record.ttl === 0));
  socket.deliver("query", { questions: [{ name: SERVICE_TYPE, type: "PTR" }] });
  assert.equal(socket.responses().at(-1), goodbye);
});

Deno.test("MdnsResponder takes the next name when a response claims its name while it probes", async () => {
  const socket = new FakeMulticastSocket();
  const responder = new MdnsResponder(socket, {
    records: RECORDS,
    txt: TXT,
    timing: FAST_RESPONDER_TIMING,
  });
  const taken = responder.instanceName;
  const started = responder.start();
  await eventually("the first probe", () => socket.sent.length > 0);
  socket.deliver("response", {
    answers: [{ name: taken, type: "TXT", ttl: 120, data: [new TextEncoder().encode("v=1")] }],
  });
  await started;
  assert.equal(responder.instanceName, `blixard-4-01234567-2.${SERVICE_TYPE}`);
  assert.ok(
    socket.responses()[0]!.packet.answers!.some((record) => record.data === responder.instanceName),
  );
  await responder.stop();
});

Deno.test("MdnsResponder answers a legacy query (not from port 5353) by unicast, with its id and question, without cache-flush", async () => {
  const socket = new FakeMulticastSocket();
  const responder = new MdnsResponder(socket, {
    records: RECORDS,
    txt: TXT,
    timing: FAST_RESPONDER_TIMING,
  });
  await responder.start();
  socket.deliver(
    "query",
    { id: 4321, questions: [{ name: SERVICE_TYPE, type: "PTR" }] },
    { address: "127.0.0.1", port: 40000 },
  );
  const answer = socket.responses().at(-1)!;
  assert.deepEqual(answer.to, { address: "127.0.0.1", port: 40000 });
  assert.equal(answer.packet.id, 4321);
  assert.deepEqual(answer.packet.questions, [{ name: SERVICE_TYPE, type: "PTR" }]);
  const records = [...answer.packet.answers!, ...answer.packet.additionals!];
  assert.ok(records.every((record) => record.ttl === 10 && record.flush !== true));
  assert.deepEqual(typesOf(records), ["PTR", "SRV", "TXT", "A", "PTR"]);
  await responder.stop();
});
