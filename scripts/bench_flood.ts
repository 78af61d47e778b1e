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
import { measureWriter, startFloodProcess } from "../tests/helpers/flood_process.ts";
import { NodeGroup } from "../tests/helpers/node_process.ts";
import { SECRET_TEXT, secretOf, writeSecretFile } from "../tests/helpers/secrets.ts";

const VALUE = "v".repeat(256);

/** The phases: the floods of issue 9's `trust_flood_test.ts`, and a quiet one first. */
const PHASES = [
  "quiet",
  "/bootstrap + cluster.challenge flood",
  "256 idle stranger connections",
  "12 connections x 100 unfinished streams",
  "1 MiB unauthenticated requests",
  "50 half-sent HTTP requests",
  "stranger Raft connections",
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string" },
      concurrency: { type: "string" },
      only: { type: "string" },
    },
  });
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
    await measureWriter(client, { seconds: 1, concurrency, prefix: "warmup-", value: VALUE });
    const rows: string[] = [];
    for (const name of PHASES) {
      if (values.only !== undefined && name !== "quiet" && !name.includes(values.only)) continue;
      console.error(`${name}: starting the flood`);
      const stop = await startFloodProcess(name, leader.httpPort);
      console.error(`${name}: measuring`);
      const figures = await measureWriter(client, {
        seconds,
        concurrency,
        prefix: `${name}-`,
        value: VALUE,
      });
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
