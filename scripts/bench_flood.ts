/**
 * A writer's throughput and latency while a stranger floods the leader (issue 9: "the
 * cluster keeps committing during the floods"). A 3-node cluster with a cluster secret on
 * 127.0.0.1; a `BlixardClient` with the secret keeps `--concurrency` 256-byte puts in flight
 * against the leader for `--seconds` per phase: once quiet, then during each flood of
 * `tests/e2e/trust_flood_test.ts`, sent from 127.0.0.2 by a child process of its own (a
 * flood in the writer's process would measure the two fighting over one event loop). Every
 * flood is bounded in count and in time. Prints a table (writes/s, p50, p99, failed writes).
 *
 * Usage: deno run -A scripts/bench_flood.ts [--seconds 3] [--concurrency 16] [--only TEXT]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BlixardClient } from "../src/client/client.ts";
import { agreedLeader, waitForVoters } from "../tests/helpers/cluster.ts";
import {
  askChallenge,
  connectRaftAsStranger,
  floodHttp,
  floodRpc,
  type FloodTarget,
  holdConnections,
  holdHalfSentRequests,
  openUnfinishedStreams,
  sendOversizedRequest,
} from "../tests/helpers/flood.ts";
import { NodeGroup } from "../tests/helpers/node_process.ts";
import { SECRET_TEXT, secretOf, writeSecretFile } from "../tests/helpers/secrets.ts";

const VALUE = "v".repeat(256);

interface WriterFigures {
  writesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
}

/** Keeps `concurrency` puts in flight for `seconds`; the figures of the acknowledged ones. */
async function measureWriter(
  client: BlixardClient,
  options: { seconds: number; concurrency: number; prefix: string },
): Promise<WriterFigures> {
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const endMs = performance.now() + options.seconds * 1000;
  const loop = async () => {
    while (performance.now() < endMs) {
      const startMs = performance.now();
      try {
        await client.put(`${options.prefix}${next++}`, VALUE, { timeoutMs: 5_000 });
        latencies.push(performance.now() - startMs);
      } catch {
        failed++;
      }
    }
  };
  const startedMs = performance.now();
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const elapsedSeconds = (performance.now() - startedMs) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (fraction: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(fraction * latencies.length))] ?? NaN;
  return {
    writesPerSecond: latencies.length / elapsedSeconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    failed,
  };
}

/** Each flood: start it against `node`, return a function that stops it. */
const FLOODS: Record<string, (node: FloodTarget) => Promise<() => Promise<void>>> = {
  "quiet": () => Promise.resolve(() => Promise.resolve()),
  "/bootstrap + cluster.challenge flood": async (node) => {
    const http = floodHttp(node, "/bootstrap", { concurrency: 8, countMax: 200_000 });
    const challenges = await floodRpc(node, {
      keys: 4,
      concurrency: 8,
      countMax: 200_000,
      call: askChallenge,
    });
    return async () => {
      await http.stop();
      await challenges.close();
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
  "1 MiB unauthenticated requests": async (node) => {
    const oversized = await floodRpc(node, {
      keys: 4,
      concurrency: 16,
      countMax: 20_000,
      call: sendOversizedRequest,
    });
    return () => oversized.close();
  },
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
async function startFloodProcess(name: string, httpPort: number): Promise<() => Promise<void>> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--flood",
      name,
      "--port",
      `${httpPort}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("flooding")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the ${name} flood ended before it started`);
    output += value;
  }
  return async () => {
    await child.stdin.close();
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    await child.status;
    clearTimeout(killer);
    await reader.cancel();
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string" },
      concurrency: { type: "string" },
      only: { type: "string" },
      flood: { type: "string" },
      port: { type: "string" },
    },
  });
  if (values.flood !== undefined) return await runFlood(values.flood, Number(values.port));
  const seconds = Number(values.seconds ?? "3");
  const concurrency = Number(values.concurrency ?? "16");
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-bench-flood-" });
  const secretPath = writeSecretFile(secretDir, "secret", SECRET_TEXT);
  const args = ["--cluster-secret-file", secretPath];
  let client: BlixardClient | null = null;
  try {
    const first = await group.start({ id: 1, args });
    await waitForVoters(first, 1);
    for (const id of [2, 3]) {
      await waitForVoters(await group.start({ id, peers: [first.address], args }), id);
    }
    const leader = await agreedLeader(group.nodes);
    client = await BlixardClient.connect(leader.address, {
      clusterSecret: await secretOf(SECRET_TEXT),
    });
    // Warm up the client's connection and sessions.
    await measureWriter(client, { seconds: 1, concurrency, prefix: "warmup-" });
    const rows: string[] = [];
    for (const name of Object.keys(FLOODS)) {
      if (values.only !== undefined && name !== "quiet" && !name.includes(values.only)) continue;
      console.error(`${name}: starting the flood`);
      const stop = await startFloodProcess(name, leader.httpPort);
      console.error(`${name}: measuring`);
      const figures = await measureWriter(client, { seconds, concurrency, prefix: `${name}-` });
      console.error(`${name}: stopping the flood`);
      await stop();
      rows.push(
        `| ${name} | ${figures.writesPerSecond.toFixed(0)} | ${figures.p50Ms.toFixed(1)} | ` +
          `${figures.p99Ms.toFixed(1)} | ${figures.failed} |`,
      );
      console.error(rows.at(-1));
    }
    console.log(`writer: ${concurrency} puts of 256 B in flight, ${seconds} s per phase`);
    console.log("| phase | writes/s | p50 ms | p99 ms | failed |");
    console.log("|---|---|---|---|---|");
    for (const row of rows) console.log(row);
  } finally {
    await client?.close();
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
}

if (import.meta.main) await main();
