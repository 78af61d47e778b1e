/**
 * A TXT record that changes while `MdnsResponder` still probes for its name (a founder of a
 * `--bootstrap-expect` formation sets its cluster id then): RFC 6762 lets it announce
 * nothing before its probing ends (§8.1), and a probe carries the records it proposes
 * (§8.2). Once the round's first probe is out, the new record goes out at once in one more
 * probe; the round's three probes and the wait after the third are unchanged.
 */

import assert from "node:assert/strict";
import { MdnsResponder } from "./mdns_responder.ts";
import type { DnsPacket } from "./multicast_socket.ts";
import {
  FakeMulticastSocket,
  FAST_RESPONDER_TIMING,
  type SentPacket,
  TEST_RESPONDER_RECORDS,
} from "./testing.ts";

const RECORDS = TEST_RESPONDER_RECORDS;
const BEFORE = ["v=1", "cluster=", "node=4"];
const AFTER = ["v=1", "cluster=c1", "node=4"];

/** The TXT strings a probe proposes, or an answer holds. */
function txtOf(records: DnsPacket["answers"] | undefined): string[] | null {
  const txt = (records ?? []).find((record) => record.type === "TXT");
  return txt === undefined ? null : (txt.data as string[]).map(String);
}

function probes(sent: SentPacket[]) {
  return sent.filter((packet) => packet.kind === "query");
}

Deno.test("MdnsResponder proposes a TXT changed while it probes in one more probe at once, and still announces only after its three probes", async () => {
  let node: MdnsResponder | null = null;
  let sentWhenChanged = -1;
  let probesRightAfterChange = -1;
  const socket: FakeMulticastSocket = new FakeMulticastSocket((kind) => {
    if (kind !== "query" || sentWhenChanged >= 0) return;
    // Inside the round, right after its first probe: the change cannot wait for a timer.
    sentWhenChanged = socket.sent.length;
    void node!.updateTxt(AFTER);
    probesRightAfterChange = probes(socket.sent).length;
  });
  node = new MdnsResponder(socket, {
    records: RECORDS,
    txt: BEFORE,
    timing: FAST_RESPONDER_TIMING,
  });
  await node.start();
  assert.equal(probesRightAfterChange, 2, "the change went out in a probe at once");
  const sent = probes(socket.sent);
  assert.deepEqual(
    sent.map((probe) => txtOf(probe.packet.authorities)),
    [BEFORE, AFTER, AFTER, AFTER],
    "the first probe, the change's, then the round's second and third",
  );
  const firstResponse = socket.sent.findIndex((packet) => packet.kind === "response");
  const lastProbe = socket.sent.findLastIndex((packet) => packet.kind === "query");
  assert.ok(lastProbe < firstResponse, "nothing is announced before the round's last probe");
  assert.deepEqual(txtOf(socket.sent[firstResponse]!.packet.answers), AFTER);
  assert.equal(node.state, "announced");
  await node.stop();
});

Deno.test("MdnsResponder leaves a TXT changed before its first probe to that probe: nothing goes out before the random delay ends", async () => {
  const socket = new FakeMulticastSocket();
  const node = new MdnsResponder(socket, {
    records: RECORDS,
    txt: BEFORE,
    timing: { ...FAST_RESPONDER_TIMING, probeDelayMaxMs: 60 },
    random: () => 0.5,
  });
  const started = node.start();
  await node.updateTxt(AFTER);
  assert.equal(socket.sent.length, 0, "no probe within the first probe's random delay");
  await started;
  assert.deepEqual(
    probes(socket.sent).map((probe) => txtOf(probe.packet.authorities)),
    [AFTER, AFTER, AFTER],
    "one round of three probes, all with the new record",
  );
  await node.stop();
});

Deno.test("MdnsResponder sends no extra probe for a TXT changed while it waits out a lost tie-break", async () => {
  let node: MdnsResponder | null = null;
  let lost = false;
  const socket: FakeMulticastSocket = new FakeMulticastSocket((kind, packet) => {
    if (kind !== "query" || lost) return;
    lost = true;
    // Another host probes for our name with later data (a higher port): we defer.
    const name = node!.instanceName;
    const theirs = (packet.authorities ?? []).map((record) =>
      record.type === "SRV" ? { ...record, data: { ...record.data, port: 9000 } } : record
    );
    queueMicrotask(() =>
      socket.deliver("query", { questions: [{ name, type: "ANY" }], authorities: theirs })
    );
  });
  node = new MdnsResponder(socket, {
    records: RECORDS,
    txt: BEFORE,
    timing: FAST_RESPONDER_TIMING,
  });
  const started = node.start();
  // After the first probe's interval the round ends deferred; the change comes in the wait.
  while (probes(socket.sent).length < 1) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, FAST_RESPONDER_TIMING.probeIntervalMs * 2));
  const beforeChange = probes(socket.sent).length;
  await node.updateTxt(AFTER);
  assert.equal(probes(socket.sent).length, beforeChange, "no probe while deferring");
  await started;
  const sent = probes(socket.sent).map((probe) => txtOf(probe.packet.authorities));
  assert.deepEqual(sent, [BEFORE, AFTER, AFTER, AFTER], "the lost round's probe, then a new round");
  await node.stop();
});
