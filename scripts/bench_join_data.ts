/**
 * `deno run -A scripts/bench_join_data.ts`: joining a cluster that holds data (issue 14),
 * with real processes on loopback.
 *
 * Each run restores node 1 from a synthetic backup of `--keys` pairs of `--value-bytes`
 * (default 80,000 × 512 B, about 45 MB of state; `scripts/synthetic_backup.ts`), so the
 * cluster holds the state without replaying it through Raft, then:
 *
 * 1. join: node 2 starts with `--peers` node 1; the figure is its spawn → its own log line
 *    "promoted to voter". Its state arrives as a snapshot (the log starts at the restore).
 *    Peak resident memory (`VmHWM`) of both processes, against node 1's before the join.
 * 2. ack gap: `--write-seconds` of 256-byte puts at 64 in flight through node 1, with a
 *    compaction every `--compaction-entries` (so one happens in the run); the figure is the
 *    largest gap between two acknowledgements, and how many compactions ran meanwhile.
 *
 * Usage: deno run -A scripts/bench_join_data.ts [--keys 80000] [--value-bytes 512]
 *        [--runs 3] [--write-seconds 6] [--compaction-entries 3000]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BlixardClient } from "../src/client/client.ts";
import { NodeGroup, type NodeProcess } from "../tests/helpers/node_process.ts";
import { writeSyntheticBackup } from "./synthetic_backup.ts";

const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "80000" },
    "value-bytes": { type: "string", default: "512" },
    runs: { type: "string", default: "3" },
    "write-seconds": { type: "string", default: "6" },
    "compaction-entries": { type: "string", default: "3000" },
  },
});
const keys = Number(values.keys);
const valueBytes = Number(values["value-bytes"]);
const runs = Number(values.runs);
const writeSeconds = Number(values["write-seconds"]);
const WAIT_MS = 300_000;
const env = { BLIXARD_SNAPSHOT_INTERVAL_ENTRIES: values["compaction-entries"] };

/** A field of /proc/PID/status in MiB (`VmRSS`, `VmHWM`). */
function memoryMiB(node: NodeProcess, field: string): number {
  const status = Deno.readTextFileSync(`/proc/${node.pid}/status`);
  const kib = Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return Math.round(kib / 102.4) / 10;
}

/** Puts at `inFlight` concurrency for `seconds`; the largest gap between acknowledgements. */
async function largestAckGap(client: BlixardClient, seconds: number, inFlight: number) {
  const endMs = performance.now() + seconds * 1000;
  let lastAckMs = performance.now();
  let gapMs = 0;
  let acks = 0;
  let next = 0;
  const value = "v".repeat(256);
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < endMs) {
      await client.put(`w-${next++}`, value, { timeoutMs: 60_000 });
      const now = performance.now();
      gapMs = Math.max(gapMs, now - lastAckMs);
      lastAckMs = now;
      acks += 1;
    }
  }));
  return { gapMs: Math.round(gapMs), acks };
}

function summary(samples: number[], unit: string): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median ${median} ${unit} (min ${sorted[0]}, max ${sorted.at(-1)})`;
}

const scratch = Deno.makeTempDirSync({ prefix: "blixard-bench-join-data-" });
const joinMs: number[] = [];
const gaps: number[] = [];
try {
  const source = `${scratch}/synthetic.bak`;
  const bytes = await writeSyntheticBackup(source, { keys, valueBytes });
  console.log(`state: ${keys} × ${valueBytes} B; backup file ${(bytes / 1e6).toFixed(1)} MB`);
  for (let run = 1; run <= runs; run++) {
    const group = new NodeGroup();
    let client: BlixardClient | null = null;
    try {
      const seed = await group.start({ id: 1, args: ["--restore", source], env });
      await seed.waitForLog(/"restore_ms"/, { timeoutMs: WAIT_MS });
      await seed.waitForHealthy({ timeoutMs: WAIT_MS });
      client = await BlixardClient.connect(seed.address, { timeoutMs: 60_000 });
      await client.put("before-join", "yes", { timeoutMs: 60_000 });
      const seedIdle = memoryMiB(seed, "VmRSS");
      const spawnedAtMs = Date.now();
      const joiner = await group.start({ id: 2, peers: [seed.address], env });
      const line = await joiner.waitForLog(/promoted to voter/, { timeoutMs: WAIT_MS });
      joinMs.push(Date.parse(JSON.parse(line).timestamp) - spawnedAtMs);
      console.log(
        `run ${run}: join ${joinMs.at(-1)} ms; peak resident: seed ${
          memoryMiB(seed, "VmHWM")
        } MiB (idle ${seedIdle} MiB before the join), joiner ${memoryMiB(joiner, "VmHWM")} MiB`,
      );
      const { gapMs, acks } = await largestAckGap(client, writeSeconds, 64);
      gaps.push(gapMs);
      const compactions = seed.stderr.split("\n").filter((l) => /compacted the log/.test(l))
        .length;
      console.log(
        `run ${run}: ${acks} writes at 64 in flight, largest ack gap ${gapMs} ms, ` +
          `${compactions} compaction(s) on the leader`,
      );
    } finally {
      await client?.close();
      await group.cleanup();
    }
  }
  console.log(`join (spawn → voter):      ${summary(joinMs, "ms")}`);
  console.log(`largest ack gap (64 in flight, across compactions): ${summary(gaps, "ms")}`);
  console.log(`load average: ${Deno.loadavg().map((load) => load.toFixed(1)).join(" ")}`);
} finally {
  await Deno.remove(scratch, { recursive: true }).catch(() => {});
}
