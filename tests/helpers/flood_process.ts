/**
 * Named floods of a stranger (`flood.ts`), each run in a child process of its own so that
 * it does not share the event loop of the writer it is measured against, and the writer's
 * measurement itself. Used by `scripts/bench_flood.ts` and the chaos `floods` profile.
 *
 * Child mode: `deno run -A tests/helpers/flood_process.ts NAME HTTP_PORT` floods the node
 * whose HTTP port is `HTTP_PORT`, prints `flooding` once it does, and stops when its stdin
 * closes. Every flood is bounded in count and in time, and sends only to loopback.
 *
 * @module
 */

import type { BlixardClient } from "../../src/client/client.ts";
import { RAFT_ALPN, RPC_ALPN } from "../../src/transport/alpn.ts";
import type { PeerAddress } from "../../src/transport/p2p_endpoint.ts";
import type { RpcClient } from "../../src/transport/rpc.ts";
import {
  askChallenge,
  askToJoin,
  attackerEndpoints,
  connectRaftAsStranger,
  floodHttp,
  floodRpc,
  type FloodTarget,
  holdConnections,
  holdHalfSentRequests,
  openUnfinishedStreams,
  peerAddressOf,
  sendOversizedRequest,
  startFlood,
} from "./flood.ts";

/** `call` from 4 strangers' keys, 8 at a time by default; resolves with its stop function. */
async function rpcFlood(
  node: FloodTarget,
  call: (client: RpcClient, peer: PeerAddress) => Promise<unknown>,
  options: { concurrency: number; countMax: number } = { concurrency: 8, countMax: 200_000 },
): Promise<() => Promise<void>> {
  const flood = await floodRpc(node, { keys: 4, ...options, call });
  return () => flood.close();
}

/** Each flood: start it against `node`, return a function that stops it. */
export const FLOODS: Record<string, (node: FloodTarget) => Promise<() => Promise<void>>> = {
  "quiet": () => Promise.resolve(() => Promise.resolve()),
  "/bootstrap flood": (node) => {
    const http = floodHttp(node, "/bootstrap", { concurrency: 8, countMax: 200_000 });
    return Promise.resolve(() => http.stop());
  },
  "cluster.challenge flood": (node) => rpcFlood(node, askChallenge),
  "cluster.join flood": (node) => rpcFlood(node, askToJoin),
  "stranger connection churn": async (node) => {
    // Strangers' keys connecting and letting go at once, on both protocols, many at a time.
    const peer = await peerAddressOf(node);
    const endpoints = await attackerEndpoints(8);
    let next = 0;
    const churn = startFlood(async () => {
      const index = next++;
      const endpoint = endpoints[index % endpoints.length]!;
      const alpn = index % 2 === 0 ? RPC_ALPN : RAFT_ALPN;
      const connection = await endpoint.connect(peer, alpn, { timeoutMs: 5_000 });
      connection.close("stranger done");
      return true;
    }, { concurrency: 8, countMax: 100_000 });
    return async () => {
      await churn.stop();
      for (const endpoint of endpoints) await endpoint.close();
    };
  },
  "/bootstrap + cluster.challenge flood": async (node) => {
    const http = floodHttp(node, "/bootstrap", { concurrency: 8, countMax: 200_000 });
    const stopChallenges = await rpcFlood(node, askChallenge);
    return async () => {
      await http.stop();
      await stopChallenges();
    };
  },
  "256 idle stranger connections": async (node) => {
    const held = await holdConnections(node, { keys: 8, perKey: 32 });
    return () => held.close();
  },
  "12 connections x 100 unfinished streams": async (node) => {
    const held = await holdConnections(node, { keys: 3, perKey: 4 });
    await openUnfinishedStreams(held.connections, 100);
    return () => held.close();
  },
  "1 MiB unauthenticated requests": (node) =>
    rpcFlood(node, sendOversizedRequest, { concurrency: 16, countMax: 20_000 }),
  "50 half-sent HTTP requests": async (node) => {
    const held = await holdHalfSentRequests(node.httpPort, {
      count: 50,
      head: "GET /health HTTP/1.1\r\n",
    });
    return () => Promise.resolve(held.close());
  },
  "stranger Raft connections": (node) => {
    // Bounded by its count; the phase waits for it to end.
    const running = connectRaftAsStranger(node, { count: 300, keys: 4 });
    return Promise.resolve(() => running);
  },
};

/** How long a flood child may take to stop before it is killed (by its pid). */
const STOP_WAIT_MS = 60_000;

/** Child mode: runs flood `name` against the node at `httpPort` until stdin closes. */
async function runFlood(name: string, httpPort: number): Promise<void> {
  const start = FLOODS[name];
  if (start === undefined) throw new Error(`no flood ${name}`);
  const target: FloodTarget = {
    httpPort,
    getJson: async (path: string) =>
      await (await fetch(`http://127.0.0.1:${httpPort}${path}`)).json(),
  };
  const stop = await start(target);
  console.log("flooding");
  // The parent closes stdin when its measurement is done.
  for await (const _ of Deno.stdin.readable) { /* wait for the end */ }
  await stop();
}

/** Starts flood `name` in a child process; resolves once it floods, with a stop function. */
export async function startFloodProcess(
  name: string,
  httpPort: number,
): Promise<() => Promise<void>> {
  if (FLOODS[name] === undefined) throw new Error(`no flood ${name}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, name, `${httpPort}`],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    await child.stdin.close().catch(() => {});
    const killer = setTimeout(() => child.kill("SIGKILL"), STOP_WAIT_MS);
    await child.status;
    clearTimeout(killer);
    await reader.cancel();
  };
  let output = "";
  while (!output.includes("flooding")) {
    const { done, value } = await reader.read();
    if (done) {
      await stop();
      throw new Error(`the ${name} flood ended before it started`);
    }
    output += value;
  }
  return stop;
}

/** A writer's figures over one phase: its acknowledged writes' rate and latencies. */
export interface WriterFigures {
  writesPerSecond: number;
  /** Latency of each acknowledged write, in ms, in completion order. */
  latenciesMs: number[];
  p50Ms: number;
  p99Ms: number;
  failed: number;
}

/** Keeps `concurrency` puts of `value` in flight for `seconds`; the figures of the acknowledged ones. */
export async function measureWriter(
  client: BlixardClient,
  options: { seconds: number; concurrency: number; prefix: string; value: string },
): Promise<WriterFigures> {
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const endMs = performance.now() + options.seconds * 1000;
  const loop = async () => {
    while (performance.now() < endMs) {
      const startMs = performance.now();
      try {
        await client.put(`${options.prefix}${next++}`, options.value, { timeoutMs: 5_000 });
        latencies.push(performance.now() - startMs);
      } catch {
        failed++;
      }
    }
  };
  const startedMs = performance.now();
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const elapsedSeconds = (performance.now() - startedMs) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (fraction: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? NaN;
  return {
    writesPerSecond: latencies.length / elapsedSeconds,
    latenciesMs: latencies,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    failed,
  };
}

if (import.meta.main) {
  const [name, port] = Deno.args;
  if (name === undefined || port === undefined) {
    console.error("usage: deno run -A tests/helpers/flood_process.ts NAME HTTP_PORT");
    Deno.exit(2);
  }
  await runFlood(name, Number(port));
}
