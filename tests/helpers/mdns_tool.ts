/**
 * A stand-in for other hosts on the link, run by tests inside their own network namespace
 * (never on the host's interfaces). Every mode sends a bounded number of packets.
 *
 * - `listen`: prints one line per packet that reaches UDP 5353 (group 224.0.0.251);
 * - `trace`: prints one JSON line per mDNS message on the group, decoded: when it arrived
 *   (Unix ms), query or response, the sender's port, the questions, and the Blixard TXT
 *   records it proposes (a probe's Authority Section) or answers; ends after 60 s;
 * - `query`: sends one PTR query for `_blixard._udp.local` and exits;
 * - `forge CLUSTER_ID`: announces, every 100 ms for at most 20 s (until ended), a Blixard
 *   record of node 1 in CLUSTER_ID with a P2P id of its own and a signature it cannot
 *   have made;
 * - `flood COUNT`: sends COUNT packets (at most 2000) of garbage, oversized and malformed
 *   Blixard records;
 * - `fill COUNT OFFSET`: sends COUNT (at most 2000) well-formed records of nodes that do not
 *   exist, named `fill-OFFSET`, `fill-OFFSET+1`, …, to fill a candidate table.
 *
 * @module
 */

import dgram from "node:dgram";
import multicastDns from "multicast-dns";
import { SecretKey } from "../../src/transport/iroh.ts";

const GROUP = "224.0.0.251";
const PORT = 5353;
const FLOOD_COUNT_MAX = 2000;
const SERVICE = "_blixard._udp.local";

// deno-lint-ignore no-explicit-any
type Mdns = any;

function open(): Promise<Mdns> {
  const mdns = multicastDns({ interface: "127.0.0.1", bind: "0.0.0.0", loopback: true });
  return new Promise((resolve, reject) => {
    mdns.on("error", reject);
    mdns.on("ready", () => resolve(mdns));
  });
}

function respond(mdns: Mdns, packet: unknown): Promise<void> {
  return new Promise((resolve) => mdns.respond(packet, () => resolve()));
}

function txtRecord(name: string, strings: string[]) {
  return { name, type: "TXT", ttl: 120, data: strings };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function listen(): Promise<void> {
  const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
  await new Promise<void>((resolve) => socket.bind(PORT, "0.0.0.0", resolve));
  socket.addMembership(GROUP, "127.0.0.1");
  socket.on("message", (message, from) => {
    console.log(`packet ${message.length} bytes from ${from.address}:${from.port}`);
  });
  console.log("listening");
  Deno.addSignalListener("SIGTERM", () => {
    socket.close();
    Deno.exit(0);
  });
}

/** Longest run of `trace`: a formation's trace needs a few seconds. */
const TRACE_MS_MAX = 60_000;

/** A Blixard TXT record's instance label and its `cluster=` and `node=` fields. */
function traceTxt(record: { name: string; type: string; data?: unknown }): string | null {
  if (record.type !== "TXT" || !Array.isArray(record.data)) return null;
  const fields = (record.data as Uint8Array[]).map((bytes) => new TextDecoder().decode(bytes))
    .filter((field) => field.startsWith("cluster=") || field.startsWith("node="));
  return `${record.name.split(".")[0]} ${fields.join(" ")}`;
}

async function trace(): Promise<void> {
  const mdns = await open();
  const print = (kind: string) => (packet: Mdns, from: { port: number }) => {
    const txts = (records: Mdns[] | undefined) =>
      (records ?? []).map(traceTxt).filter((txt) => txt !== null);
    console.log(JSON.stringify({
      atMs: Date.now(),
      kind,
      fromPort: from.port,
      questions: packet.questions.map((q: Mdns) => `${q.name.split(".")[0]} ${q.type}`),
      proposed: txts(packet.authorities),
      answered: txts([...packet.answers, ...packet.additionals]),
    }));
  };
  mdns.on("query", print("query"));
  mdns.on("response", print("response"));
  console.log("listening");
  const end = () => {
    mdns.destroy();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", end);
  setTimeout(end, TRACE_MS_MAX);
}

async function forge(clusterId: string): Promise<void> {
  const mdns = await open();
  const p2p = SecretKey.generate().public().toString();
  const name = `blixard-1-${p2p.slice(0, 8)}.${SERVICE}`;
  const strings = [
    "v=1",
    `cluster=${clusterId}`,
    "node=1",
    `p2p=${p2p}`,
    "addrs=127.0.0.1:7999",
    "http=8999",
    `t=${Date.now()}`,
    `sig=${"5a".repeat(32)}`,
  ];
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  for (let round = 0; round < 200; round++) {
    await respond(mdns, {
      answers: [{ name: SERVICE, type: "PTR", ttl: 120, data: name }, txtRecord(name, strings)],
    });
    if (round === 0) console.log(`forging ${p2p}`);
    await sleep(100);
  }
  mdns.destroy();
}

async function flood(count: number): Promise<void> {
  const mdns = await open();
  const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
  const kinds = [
    // Not DNS at all.
    () => socket.send(crypto.getRandomValues(new Uint8Array(64)), PORT, GROUP),
    // A Blixard TXT with many strings and bytes.
    (i: number) =>
      respond(mdns, {
        answers: [
          txtRecord(`flood-${i}.${SERVICE}`, Array.from({ length: 40 }, () => "x".repeat(200))),
        ],
      }),
    // Fields that do not validate.
    (i: number) =>
      respond(mdns, {
        answers: [
          txtRecord(`bad-${i}.${SERVICE}`, [
            "v=1",
            "cluster=",
            "node=0",
            "p2p=zz",
            "addrs=",
            "http=0",
          ]),
        ],
      }),
  ];
  for (let i = 0; i < Math.min(count, FLOOD_COUNT_MAX); i++) {
    await kinds[i % kinds.length]!(i);
    if (i % 50 === 49) await sleep(10);
  }
  console.log(`flooded ${count}`);
  socket.close();
  mdns.destroy();
}

async function fill(count: number, offset: number): Promise<void> {
  const mdns = await open();
  const p2p = SecretKey.generate().public().toString();
  for (let i = offset; i < offset + Math.min(count, FLOOD_COUNT_MAX); i++) {
    await respond(mdns, {
      answers: [txtRecord(`fill-${i}.${SERVICE}`, [
        "v=1",
        "cluster=",
        `node=${1000 + i}`,
        `p2p=${p2p}`,
        "addrs=127.0.0.1:9",
        "http=9",
      ])],
    });
    if (i % 20 === 19) await sleep(10);
  }
  console.log(`filled ${count}`);
  mdns.destroy();
}

async function query(): Promise<void> {
  const mdns = await open();
  await new Promise<void>((resolve) =>
    mdns.query({ questions: [{ name: SERVICE, type: "PTR" }] }, () => resolve())
  );
  console.log("queried");
  mdns.destroy();
}

if (import.meta.main) {
  const [mode, argument] = Deno.args;
  if (mode === "listen") await listen();
  else if (mode === "trace") await trace();
  else if (mode === "query") await query();
  else if (mode === "forge") await forge(argument ?? "");
  else if (mode === "flood") await flood(Number(argument ?? "100"));
  else if (mode === "fill") await fill(Number(argument ?? "100"), Number(Deno.args[2] ?? "0"));
  else throw new Error(`mdns_tool: unknown mode ${mode}`);
}
