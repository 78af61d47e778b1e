/**
 * `deno run -A scripts/bench_join_data.ts` (or `deno task bench --only joindata`): joining a
 * cluster that holds data (issue 14), with real processes on loopback.
 *
 * Each run restores node 1 from a synthetic backup of `--keys` pairs of `--value-bytes`
 * (default 80,000 × 512 B, about 45 MB of state; `--mb N` sets the keys for about N MB;
 * `scripts/synthetic_backup.ts`), so the cluster holds the state without replaying it
 * through Raft, then:
 *
 * 1. join: node 2 starts with `--peers` node 1; the figure is its spawn → its own log line
 *    "promoted to voter". Its state arrives as a snapshot (the log starts at the restore).
 *    Also: when each phase ended (the joiner's own log lines: ready, learner, receiving,
 *    received, installed, voter), the CPU time both processes used during the join
 *    (`/proc/PID/stat`: what a loaded machine moves least), and their resident memory
 *    (`VmRSS`, and `RssAnon`, which leaves out mapped files such as SQLite's pages)
 *    sampled every 50 ms during the join, against each one's idle figure: node 1's before
 *    the join, node 2's once the join is over and it sat idle for a second.
 * 2. ack gap (unless `--write-seconds 0`): puts of 256 bytes at 64 in flight through node 1,
 *    with a compaction every `--compaction-entries` (so several happen in the run); the
 *    figure is the largest gap between two acknowledgements, and the compactions meanwhile.
 *
 * Usage: deno run -A scripts/bench_join_data.ts [--keys 80000 | --mb 45] [--value-bytes 512]
 *        [--runs 3] [--write-seconds 6] [--compaction-entries 3000] [--main PATH]
 *
 * `--main` runs another tree's `main.ts`, so that two builds compare in one sitting.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BlixardClient } from "../src/client/client.ts";
import { NodeGroup, type NodeProcess } from "../tests/helpers/node_process.ts";
import { writeSyntheticBackup } from "./synthetic_backup.ts";
// A cycle (bench.ts runs this file's benchmark): only functions are taken, used after load.
import { cpuSeconds, residentMiB } from "./bench.ts";

/** What to measure. */
export interface JoinDataOptions {
  /** Pairs in the state, of `valueBytes` each. */
  keys: number;
  valueBytes: number;
  runs: number;
  /** Seconds of writes at 64 in flight after each join (0: none). */
  writeSeconds: number;
  /** Entries between compactions during those writes. */
  compactionEntries: number;
  /** The script the nodes run (`bench.ts`: the bundle), and Deno's flags for them. */
  mainPath?: string;
  denoFlags?: string[];
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

/** Peak and idle memory of one process, MiB. */
export interface MemoryFigures {
  idleRss: number;
  idleAnon: number;
  peakRss: number;
  peakAnon: number;
}

/** One run's figures. */
export interface JoinDataRun {
  joinMs: number;
  /** Spawn → the end of each phase, from the joiner's own log lines. */
  phasesMs: Record<string, number>;
  /** The joiner's CPU seconds at the end of each phase (from 50 ms samples). */
  joinerCpuAt: Record<string, number>;
  /** CPU seconds used during the join (spawn → voter). */
  cpuSeconds: { leader: number; joiner: number };
  leader: MemoryFigures;
  joiner: MemoryFigures;
  ackGapMs: number | null;
  acks: number;
  compactions: number;
  loadAverage: number[];
}

const PHASES: [string, RegExp][] = [
  ["ready", /"message":"ready /],
  ["learner", /as a learner through/],
  ["receiving", /receiving a snapshot at index/],
  ["received", /snapshot at index \d+ received/],
  ["installed", /snapshot at index \d+ installed/],
  ["voter", /promoted to voter/],
];

/** Keys for about `mb` MB of state of `valueBytes` values. */
export function keysForMegabytes(mb: number, valueBytes: number): number {
  // Bytes of state one pair stands for: its value, key and row overhead (80,000 ≈ 45 MB).
  const rowOverheadBytes = 50;
  return Math.round(mb * 1e6 / (valueBytes + rowOverheadBytes));
}

/** A field of /proc/PID/status in MiB, to a tenth. */
function memoryMiB(pid: number, field: "VmRSS" | "RssAnon"): number {
  return Math.round(residentMiB(pid, field) * 10) / 10;
}

/**
 * Samples the peak VmRSS and RssAnon of `pid` until `stop()`, and its CPU seconds over
 * time (`cpuAt`: the CPU time it had used at a wall-clock time, from the samples).
 */
function samplePeaks(pid: number) {
  const peak = { rss: 0, anon: 0 };
  const cpu: [number, number][] = [];
  const sample = () => {
    try {
      peak.rss = Math.max(peak.rss, memoryMiB(pid, "VmRSS"));
      peak.anon = Math.max(peak.anon, memoryMiB(pid, "RssAnon"));
      cpu.push([Date.now(), cpuSeconds(pid)]);
    } catch {
      // The process is gone; its last samples stand.
    }
  };
  sample();
  // Often enough to catch a peak that lasts a chunk or two.
  const timer = setInterval(sample, 50);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return peak;
    },
    cpuAt: (atMs: number) => (cpu.findLast(([ms]) => ms <= atMs) ?? cpu[0]!)[1],
  };
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

function phaseTimes(joiner: NodeProcess, spawnedAtMs: number): Record<string, number> {
  const lines = joiner.stderr.split("\n");
  const phases: Record<string, number> = {};
  for (const [name, pattern] of PHASES) {
    const line = lines.findLast((candidate) => pattern.test(candidate));
    if (line !== undefined) phases[name] = Date.parse(JSON.parse(line).timestamp) - spawnedAtMs;
  }
  return phases;
}

/** A restore or a join of a large state takes minutes on a loaded machine. */
const WAIT_MS = 900_000;

/** Runs the join-with-data benchmark `options.runs` times. */
export async function benchJoinData(options: JoinDataOptions): Promise<JoinDataRun[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const env = { BLIXARD_SNAPSHOT_INTERVAL_ENTRIES: String(options.compactionEntries) };
  const nodeOptions = {
    ...(options.mainPath === undefined ? {} : { mainPath: options.mainPath }),
    ...(options.denoFlags === undefined ? {} : { denoFlags: options.denoFlags }),
  };
  const scratch = Deno.makeTempDirSync({ prefix: "blixard-bench-join-data-" });
  const runs: JoinDataRun[] = [];
  try {
    const source = `${scratch}/synthetic.bak`;
    const builtAtMs = performance.now();
    const bytes = await writeSyntheticBackup(source, options);
    log(
      `state: ${options.keys} × ${options.valueBytes} B; backup file ${
        (bytes / 1e6).toFixed(1)
      } MB, built in ${Math.round((performance.now() - builtAtMs) / 1000)} s`,
    );
    for (let run = 1; run <= options.runs; run++) {
      const group = new NodeGroup();
      let client: BlixardClient | null = null;
      try {
        const seed = await group.start({ id: 1, args: ["--restore", source], env, ...nodeOptions });
        await seed.waitForLog(/"restore_ms"/, { timeoutMs: WAIT_MS });
        await seed.waitForHealthy({ timeoutMs: WAIT_MS });
        client = await BlixardClient.connect(seed.address, { timeoutMs: 60_000 });
        await client.put("before-join", "yes", { timeoutMs: 60_000 });
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const seedIdle = {
          rss: memoryMiB(seed.pid, "VmRSS"),
          anon: memoryMiB(seed.pid, "RssAnon"),
        };
        const seedCpu = cpuSeconds(seed.pid);
        const seedPeaks = samplePeaks(seed.pid);
        const spawnedAtMs = Date.now();
        const joiner = await group.start({ id: 2, peers: [seed.address], env, ...nodeOptions });
        const joinerPeaks = samplePeaks(joiner.pid);
        const line = await joiner.waitForLog(/promoted to voter/, { timeoutMs: WAIT_MS });
        const joinMs = Date.parse(JSON.parse(line).timestamp) - spawnedAtMs;
        const cpu = {
          leader: Math.round((cpuSeconds(seed.pid) - seedCpu) * 100) / 100,
          joiner: cpuSeconds(joiner.pid),
        };
        const leaderPeak = seedPeaks.stop();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const joinerPeak = joinerPeaks.stop();
        const joinerIdle = {
          rss: memoryMiB(joiner.pid, "VmRSS"),
          anon: memoryMiB(joiner.pid, "RssAnon"),
        };
        const figures = (idle: typeof seedIdle, peak: typeof seedIdle): MemoryFigures => ({
          idleRss: idle.rss,
          idleAnon: idle.anon,
          peakRss: peak.rss,
          peakAnon: peak.anon,
        });
        const phasesMs = phaseTimes(joiner, spawnedAtMs);
        const joinerCpuAt = Object.fromEntries(
          Object.entries(phasesMs).map((
            [name, ms],
          ) => [name, joinerPeaks.cpuAt(spawnedAtMs + ms)]),
        );
        const result: JoinDataRun = {
          joinMs,
          phasesMs,
          joinerCpuAt,
          cpuSeconds: cpu,
          leader: figures(seedIdle, leaderPeak),
          joiner: figures(joinerIdle, joinerPeak),
          ackGapMs: null,
          acks: 0,
          compactions: 0,
          loadAverage: Deno.loadavg(),
        };
        log(
          `run ${run}: join ${joinMs} ms (${
            Object.entries(result.phasesMs).map(([name, ms]) => `${name} ${ms}`).join(", ")
          }); CPU s leader ${cpu.leader}, joiner ${cpu.joiner} (${
            Object.entries(joinerCpuAt).map(([name, seconds]) => `${name} ${seconds}`).join(", ")
          }); leader MiB ` +
            `rss ${seedIdle.rss} → peak ${leaderPeak.rss}, anon ${seedIdle.anon} → ${leaderPeak.anon}; ` +
            `joiner MiB peak rss ${joinerPeak.rss} (idle after ${joinerIdle.rss}), anon ` +
            `${joinerPeak.anon} (${joinerIdle.anon}); load ${result.loadAverage[0]!.toFixed(1)}`,
        );
        if (options.writeSeconds > 0) {
          const compactionsBefore = compactionsOf(seed);
          const { gapMs, acks } = await largestAckGap(client, options.writeSeconds, 64);
          result.ackGapMs = gapMs;
          result.acks = acks;
          result.compactions = compactionsOf(seed) - compactionsBefore;
          log(
            `run ${run}: ${acks} writes at 64 in flight, largest ack gap ${gapMs} ms, ` +
              `${result.compactions} compaction(s) on the leader`,
          );
        }
        runs.push(result);
      } finally {
        await client?.close();
        await group.cleanup();
      }
    }
    return runs;
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

function compactionsOf(node: NodeProcess): number {
  return node.stderr.split("\n").filter((line) => /compacted the log/.test(line)).length;
}

function summary(samples: number[], unit: string): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median ${median} ${unit} (min ${sorted[0]}, max ${sorted.at(-1)})`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      keys: { type: "string" },
      mb: { type: "string" },
      "value-bytes": { type: "string", default: "512" },
      runs: { type: "string", default: "3" },
      "write-seconds": { type: "string", default: "6" },
      "compaction-entries": { type: "string", default: "3000" },
      main: { type: "string" },
    },
  });
  const valueBytes = Number(values["value-bytes"]);
  const keys = values.keys !== undefined
    ? Number(values.keys)
    : values.mb !== undefined
    ? keysForMegabytes(Number(values.mb), valueBytes)
    : 80_000;
  const runs = await benchJoinData({
    keys,
    valueBytes,
    runs: Number(values.runs),
    writeSeconds: Number(values["write-seconds"]),
    compactionEntries: Number(values["compaction-entries"]),
    ...(values.main === undefined ? {} : { mainPath: values.main }),
  });
  console.log(`join (spawn → voter): ${summary(runs.map((run) => run.joinMs), "ms")}`);
  console.log(
    `CPU during the join: leader ${
      summary(runs.map((run) => run.cpuSeconds.leader), "s")
    }, joiner ${summary(runs.map((run) => run.cpuSeconds.joiner), "s")}`,
  );
  const gaps = runs.flatMap((run) => run.ackGapMs === null ? [] : [run.ackGapMs]);
  if (gaps.length > 0) console.log(`largest ack gap (64 in flight): ${summary(gaps, "ms")}`);
  console.log(`load average: ${Deno.loadavg().map((load) => load.toFixed(1)).join(" ")}`);
}
