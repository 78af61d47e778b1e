/**
 * The RFC 6762 rules of `MdnsResponder` that involve another host: the simultaneous-probe
 * tie-break (§8.2), conflicts after announcing (§9) and known-answer suppression (§7.1),
 * in process, with the delays shortened and, where two responders meet, a fake link.
 */

import assert from "node:assert/strict";
import { eventually } from "../transport/testing.ts";
import { MdnsResponder, type ResponderRecords, SERVICE_TYPE } from "./mdns_responder.ts";
import type { DnsPacket, DnsRecord } from "./multicast_socket.ts";
import { compareRecordSets } from "./record_order.ts";
import {
  FakeMulticastLink,
  FakeMulticastSocket,
  FAST_RESPONDER_TIMING,
  TEST_RESPONDER_RECORDS,
} from "./testing.ts";

const FAST = FAST_RESPONDER_TIMING;

const RECORDS = TEST_RESPONDER_RECORDS;
const TXT = ["v=1", "cluster=", "node=4"];
const BASE = `blixard-4-01234567.${SERVICE_TYPE}`;

function responder(socket: FakeMulticastSocket, records: Partial<ResponderRecords> = {}) {
  return new MdnsResponder(socket, { records: { ...RECORDS, ...records }, txt: TXT, timing: FAST });
}

function probes(socket: FakeMulticastSocket) {
  return socket.sent.filter((sent) => sent.kind === "query");
}

/** A probe of another host for `name`, proposing our TXT and an SRV record on `port`. */
function probeFor(name: string, port: number) {
  return {
    questions: [{ name, type: "ANY" }],
    authorities: [
      {
        name,
        type: "SRV",
        ttl: 120,
        data: { priority: 0, weight: 0, port, target: "blixard-4-01234567.local" },
      },
      { name, type: "TXT", ttl: 120, data: TXT },
    ],
  };
}

const srv = (port: number, target = "h.local"): DnsRecord => ({
  name: "x.local",
  type: "SRV",
  data: { priority: 0, weight: 0, port, target },
});

Deno.test("compareRecordSets orders by class, type, then rdata bytes; a prefix and a shorter set are earlier", () => {
  const a = (address: string): DnsRecord => ({ name: "h.local", type: "A", data: address });
  assert.ok(compareRecordSets([a("192.0.2.1")], [a("192.0.2.2")]) < 0);
  assert.ok(compareRecordSets([a("192.0.2.10")], [a("192.0.2.9")]) > 0, "bytes, not text");
  assert.equal(compareRecordSets([a("192.0.2.1")], [{ ...a("192.0.2.1"), ttl: 0 }]), 0);
  assert.ok(compareRecordSets([a("192.0.2.200")], [srv(1)]) < 0, "type A (1) before SRV (33)");
  assert.ok(compareRecordSets([srv(7001)], [srv(7002)]) < 0);
  const txt = (...parts: (string | Uint8Array)[]): DnsRecord => ({
    name: "x.local",
    type: "TXT",
    data: parts,
  });
  assert.equal(compareRecordSets([txt("v=1")], [txt(new TextEncoder().encode("v=1"))]), 0);
  assert.ok(compareRecordSets([txt("v=1")], [txt("v=1", "x")]) < 0, "a prefix is earlier");
  // Sets: sorted, then pairwise; the first difference decides, whatever the order given.
  assert.ok(compareRecordSets([srv(9), a("192.0.2.1")], [a("192.0.2.1"), srv(10)]) < 0);
  assert.ok(compareRecordSets([a("192.0.2.1"), srv(9)], [a("192.0.2.1")]) > 0, "more records win");
});

/**
 * A socket on which, right after the responder's first probe goes out (within its round,
 * whatever the machine's load), `packets` arrive as queries from the link.
 */
function socketAnsweringFirstProbeWith(
  packets: (first: Partial<DnsPacket>) => Partial<DnsPacket>[],
) {
  let answered = false;
  const socket: FakeMulticastSocket = new FakeMulticastSocket((kind, packet) => {
    if (kind !== "query" || answered) return;
    answered = true;
    for (const arriving of packets(packet)) socket.deliver("query", arriving);
  });
  return socket;
}

Deno.test("MdnsResponder probing loses a simultaneous probe with later data, waits, probes again, and keeps probing its name", async () => {
  // The other host proposes port 9000 > 7004: its data is later, it wins.
  const socket = socketAnsweringFirstProbeWith(() => [probeFor(BASE, 9000)]);
  const node = responder(socket);
  await node.start();
  assert.equal(node.instanceName, BASE, "a lost tie-break is no rename");
  const sent = probes(socket).length;
  assert.equal(sent, 4, `${sent} probes: one, then a whole round again`);
  assert.equal(node.state, "announced");
  await node.stop();
});

Deno.test("MdnsResponder probing ignores a simultaneous probe with earlier data, and its own probe looped back", async () => {
  const socket = socketAnsweringFirstProbeWith((first) => [probeFor(BASE, 80), first]);
  const node = responder(socket);
  await node.start();
  assert.equal(probes(socket).length, 3, "one round of three probes");
  assert.equal(node.instanceName, BASE);
  await node.stop();
});

Deno.test("MdnsResponder probing takes its own probe, looped back after its TXT changed, for its own", async () => {
  let node: MdnsResponder | null = null;
  const socket = socketAnsweringFirstProbeWith((first) => {
    // The new TXT sorts before the one in the probe: were the echo another host's, we would lose.
    node!.updateTxtQuietly(["v=1", "cluster=", "node=0"]);
    return [first];
  });
  node = responder(socket);
  await node.start();
  assert.equal(probes(socket).length, 3, "one round of three probes");
  await node.stop();
});

Deno.test("two responders that start at once for one name end with two names: the tie-break, then the winner's defense", async () => {
  const link = new FakeMulticastLink();
  const [first, second] = [link.socket(), link.socket()];
  const early = responder(first, { p2pPort: 7004 });
  const late = responder(second, { p2pPort: 7005 });
  assert.equal(early.instanceName, late.instanceName);
  await Promise.all([early.start(), late.start()]);
  assert.equal(late.instanceName, BASE, "the later data keeps the name");
  assert.equal(early.instanceName, `blixard-4-01234567-2.${SERVICE_TYPE}`);
  assert.deepEqual([early.state, late.state], ["announced", "announced"]);
  await Promise.all([early.stop(), late.stop()]);
});

Deno.test("MdnsResponder announced goes back to probing on another host's record for its name with other data (§9), and on nothing else", async () => {
  const socket = new FakeMulticastSocket();
  const node = responder(socket);
  await node.start();
  // Not conflicts: its own records, a goodbye of another host, a shared PTR, and its former
  // TXT echoed after a change.
  node.updateTxtQuietly(["v=1", "cluster=c1", "node=4"]);
  socket.deliver("response", { answers: [{ name: BASE, type: "TXT", ttl: 120, data: TXT }] });
  socket.deliver("response", { answers: [{ name: BASE, type: "TXT", ttl: 0, data: ["other"] }] });
  socket.deliver("response", {
    answers: [{ name: SERVICE_TYPE, type: "PTR", ttl: 120, data: "someone-else" }],
  });
  assert.equal(node.state, "announced");
  socket.deliver("response", {
    answers: [{ name: BASE, type: "TXT", ttl: 120, flush: true, data: ["node=99"] }],
  });
  assert.equal(node.state, "probing");
  await node.stop();
});

Deno.test("MdnsResponder that hears a conflict between its two announcements probes again", async () => {
  let conflicted = false;
  const socket: FakeMulticastSocket = new FakeMulticastSocket((kind) => {
    if (kind !== "response" || conflicted) return;
    conflicted = true;
    socket.deliver("response", {
      answers: [{ name: BASE, type: "SRV", ttl: 120, data: { port: 1, target: "x.local" } }],
    });
  });
  const node = responder(socket);
  await node.start();
  assert.ok(conflicted);
  assert.ok(probes(socket).length >= 6, `${probes(socket).length} probes: a second round`);
  assert.equal(node.state, "announced");
  await node.stop();
});

Deno.test("two responders announced with one name on links that then join: the one that hears the other's answer probes again and renames", async () => {
  const link = new FakeMulticastLink({ partitioned: true });
  const [first, second] = [link.socket(), link.socket()];
  const owner = responder(first, { p2pPort: 7005 });
  const newcomer = responder(second, { p2pPort: 7004 });
  await Promise.all([owner.start(), newcomer.start()]);
  assert.equal(owner.instanceName, newcomer.instanceName, "apart, each took the name");
  link.heal();
  // The owner re-announces (its TXT changed); the newcomer hears other data for its name.
  await owner.updateTxt(["v=1", "cluster=c1", "node=4"]);
  await eventually(
    "the newcomer renamed and announced",
    () => newcomer.instanceName !== BASE && newcomer.state === "announced",
  );
  assert.equal(newcomer.instanceName, `blixard-4-01234567-2.${SERVICE_TYPE}`);
  assert.equal(owner.instanceName, BASE);
  assert.equal(owner.state, "announced");
  await Promise.all([owner.stop(), newcomer.stop()]);
});

Deno.test("MdnsResponder leaves out the known answers that have half their TTL left (§7.1)", async () => {
  const socket = new FakeMulticastSocket();
  const node = responder(socket);
  await node.start();
  await new Promise((resolve) => setTimeout(resolve, FAST.multicastIntervalMs));
  const pointer = { name: SERVICE_TYPE, type: "PTR", data: node.instanceName };
  const query = (ttl: number) => ({
    questions: [{ name: SERVICE_TYPE, type: "PTR" }],
    answers: [{ ...pointer, ttl }],
  });
  const before = socket.responses().length;
  socket.deliver("query", query(120));
  socket.deliver("query", query(60));
  await new Promise((resolve) => setTimeout(resolve, FAST.multicastIntervalMs * 2));
  assert.equal(socket.responses().length, before, "known with ≥ 60 s left: no answer");

  socket.deliver("query", query(59));
  await eventually("answered", () => socket.responses().length > before);
  const answer = socket.responses().at(-1)!.packet;
  assert.deepEqual(answer.answers?.map((record) => record.type), ["PTR"]);
  assert.equal(answer.answers?.[0]?.data, node.instanceName);

  // Known answers also leave the additionals: asked for SRV and TXT, knowing the TXT.
  await new Promise((resolve) => setTimeout(resolve, FAST.multicastIntervalMs));
  const txt = { name: node.instanceName, type: "TXT", ttl: 120, data: TXT };
  socket.deliver("query", {
    questions: [{ name: node.instanceName, type: "ANY" }],
    answers: [txt],
  });
  await eventually("answered", () => socket.responses().at(-1)!.packet !== answer);
  const last = socket.responses().at(-1)!.packet;
  const types = [...last.answers!, ...last.additionals!].map((record) => record.type);
  assert.ok(types.includes("SRV") && !types.includes("TXT"), types.join(","));
  await node.stop();
});
