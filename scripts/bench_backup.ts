/**
 * `deno run -A scripts/bench_backup.ts`: the backup and restore figures of issue 15, with
 * a real node process on loopback.
 *
 * 1. A backup file of `--keys` pairs of `--value-bytes` (default 80,000 × 512 B, the
 *    issue's 45 MB state) is written directly from a scratch database, which is much
 *    faster than loading the pairs through Raft.
 * 2. restore: the node's own steps (`checkRestore`, `restoreDataDir`) in this process, wall
 *    and CPU time; then `blixard node --restore FILE` is spawned: the restore in the node
 *    (its log's `restore_ms`) and spawn → the first write acknowledged, with the CPU time
 *    the node spent until then (its boot included).
 * 3. backup: `BlixardClient.backup()` from that node into a file: the ReadIndex, taking
 *    the image, the sealed transfer over HTTP, and the atomic, fsynced write; wall time,
 *    and the CPU time of both processes (on a loaded machine, CPU time is what the work
 *    costs; wall time is mostly waiting for a core).
 *
 * Usage: deno run -A scripts/bench_backup.ts [--keys 80000] [--value-bytes 512] [--runs 3]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeBackupFile } from "../src/backup/backup_file.ts";
import { IMAGE_CHUNK_BYTES_DEFAULT } from "../src/backup/backup_image.ts";
import { BlixardClient } from "../src/client/client.ts";
import { NodeGroup } from "../tests/helpers/node_process.ts";
import { checkRestore, restoreDataDir } from "../src/backup/restore.ts";
import { writeSyntheticBackup } from "./synthetic_backup.ts";

const { values } = parseArgs({
  options: {
    keys: { type: "string", default: "80000" },
    "value-bytes": { type: "string", default: "512" },
    runs: { type: "string", default: "3" },
  },
});
const keys = Number(values.keys);
const valueBytes = Number(values["value-bytes"]);
const runs = Number(values.runs);

/** CPU time (user + system) of this process, ms. */
function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** CPU time (user + system) of process `pid`, ms, from /proc. */
function processCpuMs(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * 10;
}

/** The node's restore steps in this process: wall and CPU ms. */
function restoreInProcess(source: string): { wallMs: number; cpuMs: number } {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-bench-restore-" });
  const [wallStart, cpuStart] = [performance.now(), ownCpuMs()];
  try {
    restoreDataDir(checkRestore(source, `${dataDir}/d`), {
      dataDirPath: dataDir,
      self: { nodeId: 1, p2pNodeId: "a".repeat(64), addresses: ["127.0.0.1:7001"], relayUrl: null },
    });
    return {
      wallMs: Math.round(performance.now() - wallStart),
      cpuMs: Math.round(ownCpuMs() - cpuStart),
    };
  } finally {
    Deno.removeSync(dataDir, { recursive: true });
  }
}

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median ${median} ms (min ${sorted[0]}, max ${sorted.at(-1)})`;
}

const scratch = Deno.makeTempDirSync({ prefix: "blixard-bench-backup-" });
const group = new NodeGroup();
try {
  const source = `${scratch}/synthetic.bak`;
  const bytes = await writeSyntheticBackup(source, { keys, valueBytes });
  console.log(`state: ${keys} × ${valueBytes} B; backup file ${(bytes / 1e6).toFixed(1)} MB`);
  const restoreMs: number[] = [];
  const servingMs: number[] = [];
  /** CPU the node spent from its spawn to its first write acknowledged (boot included). */
  const servingCpuMs: number[] = [];
  const backupMs: number[] = [];
  const backupCpuMs: number[] = [];
  const inProcess: { wallMs: number; cpuMs: number }[] = [];
  for (let run = 1; run <= runs; run++) {
    inProcess.push(restoreInProcess(source));
    console.log(
      `run ${run}: restore steps in this process ${inProcess.at(-1)!.wallMs} ms, ` +
        `CPU ${inProcess.at(-1)!.cpuMs} ms`,
    );
    const node = await group.start({ id: run, args: ["--restore", source] });
    const line = await node.waitForLog(/"restore_ms"/, { timeoutMs: 120_000 });
    restoreMs.push(Number(/"restore_ms":(\d+)/.exec(line)![1]));
    await node.waitForHealthy({ timeoutMs: 120_000 });
    const client = await BlixardClient.connect(node.address, { timeoutMs: 60_000 });
    try {
      await client.put("after-restore", "yes", { timeoutMs: 60_000 });
      servingMs.push(Math.round(performance.now() - node.startedAtMs));
      servingCpuMs.push(processCpuMs(node.pid));
      const startedMs = performance.now();
      const cpuStart = ownCpuMs() + processCpuMs(node.pid);
      const { header, chunks } = await client.backup({
        chunkBytes: IMAGE_CHUNK_BYTES_DEFAULT,
        httpUrl: `http://${node.address.split(":")[0]}:${node.httpPort}/backup`,
        timeoutMs: 60_000,
      });
      const written = await writeBackupFile(`${scratch}/run${run}.bak`, header, chunks);
      backupMs.push(Math.round(performance.now() - startedMs));
      backupCpuMs.push(Math.round(ownCpuMs() + processCpuMs(node.pid) - cpuStart));
      console.log(
        `run ${run}: restore ${restoreMs.at(-1)} ms in the node, spawn → first write ` +
          `${servingMs.at(-1)} ms; backup ${backupMs.at(-1)} ms, CPU ${backupCpuMs.at(-1)} ms ` +
          `(${written.chunks} chunks, ` +
          `${(written.bytes / 1e6).toFixed(1)} MB)`,
      );
    } finally {
      await client.close();
      await node.stop();
    }
  }
  console.log(`restore steps, wall:          ${summary(inProcess.map((r) => r.wallMs))}`);
  console.log(`restore steps, CPU:           ${summary(inProcess.map((r) => r.cpuMs))}`);
  console.log(`restore in the node:          ${summary(restoreMs)}`);
  console.log(`spawn → first write:          ${summary(servingMs)}`);
  console.log(`  CPU of the node meanwhile:  ${summary(servingCpuMs)}`);
  console.log(`backup (ReadIndex → fsynced): ${summary(backupMs)}`);
  console.log(`backup, CPU of both sides:    ${summary(backupCpuMs)}`);
  console.log(`load average: ${Deno.loadavg().map((load) => load.toFixed(1)).join(" ")}`);
} finally {
  await group.cleanup();
  await Deno.remove(scratch, { recursive: true }).catch(() => {});
}
