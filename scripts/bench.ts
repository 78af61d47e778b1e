/**
 * `deno task bench`: the figures of DESIGN.md section 12, on loopback, with real node
 * processes. Each figure is the median of several runs, with min and max.
 *
 * - startup: single-node start (process spawn) → `GET /health` 200, fresh data dir, and the
 *   CPU time the node used until then;
 * - memory: resident memory (VmRSS) of an idle node, and of each node of a 3-node cluster
 *   idle and after the write run;
 * - formation: N nodes started at once (`--nodes 3,5,7`; N > 5 with `--max-voters N`),
 *   nothing → N voters agreeing on a leader;
 * - join: joiner process start → voter (its own log's timestamp), into a 3-node cluster,
 *   with its phases from the nodes' logs (`bench_join_phases.ts`);
 * - failover: kill -9 of the leader → the next write acknowledged to a client that keeps
 *   writing (sequentially, through a follower), in clusters of each `--nodes` size;
 * - storm: 10 joiners started at once through one member of a 3-node cluster → the leader
 *   lists all 13, 5 voters (the default voter cap) and 8 learners, none still joining;
 * - throughput: 256-byte puts at 1, 16, 64 and 256 in flight through `BlixardClient`
 *   connected to the leader: writes/s, p50 and p99 latency, and each node's CPU seconds
 *   (user + system, from `/proc/<pid>/stat`) per 1,000 writes: the figure that a loaded
 *   machine moves least, so the one to judge a change by;
 * - idle: leader changes in a 3-node cluster left idle (`--idle-seconds`, default 20);
 * - joindata: a join into a cluster holding `--mb` MB of state (default 45: 80,000 × 512 B),
 *   joiner start → voter, with the CPU time and peak memory of both sides, and the largest
 *   gap between acknowledgements at 64 in flight across compactions
 *   (`scripts/bench_join_data.ts`, which also runs alone);
 * - cache: `blixard kv get` as a child process with a warm peer cache (no `/bootstrap`
 *   fetch) and with `--no-cache`, process start to exit; and `BlixardClient.connect` + `get`
 *   in this process, with and without the cache, which leaves out Deno's start-up;
 * - ticket: a join by `--join TICKET` alone, joiner process start → voter, into a 3-node
 *   cluster, with its phases from the nodes' logs (`bench_join_phases.ts`);
 * - mdns: join by mDNS and `--bootstrap-expect 3` formation (`bench_mdns.ts`), inside a
 *   network namespace of its own (root and `ip`; skipped with the reason otherwise).
 *
 * Prints a table, and writes the JSON to `bench-results/` (or `--json PATH`).
 *
 * Usage: deno task bench [--runs 7] [--formation-runs 20] [--only startup,formation,...]
 *                        [--nodes 3,5,7] [--idle-seconds 20] [--write-seconds 3] [--json PATH]
 *                        [--levels 1,16,64,256] [--deno-flags="--v8-flags=…"]
 *                        [--cpu-prof DIR] [--main PATH] [--mb 45] [--ports LOW-HIGH]
 *
 * `--deno-flags` passes flags to Deno in every node instead of the V8 flags the binary is
 * compiled with (`NODE_V8_FLAGS`; `--deno-flags=` runs V8's defaults); `--cpu-prof DIR`
 * writes a V8 CPU profile of each node of the startup, formation and throughput phases into
 * DIR (the nodes are stopped with SIGTERM so that they write it); `--ports LOW-HIGH` draws
 * the nodes' bind ports from that range (HTTP 1000 above), so that a bench beside other
 * users of the machine stays in a range agreed with them.
 *
 * The nodes run the program as the binary carries it: the minified bundle
 * (`scripts/bundle.ts`), built from this tree when the bench starts, at `dist/bundle/main.js`.
 * `--main PATH` runs another script instead: `main.ts` for the sources as `deno task node`
 * runs them (about 55 ms slower to start), or another tree's bundle or `main.ts`, so that two
 * builds can be compared in one sitting. The CLI processes of the cache figures run
 * `main.ts`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BlixardClient } from "../src/client/client.ts";
import { fetchStatus } from "../src/client/http_status.ts";
import type { StatusJson } from "../src/transport/cluster_rpcs.ts";
import { PeerCache } from "../src/bootstrap/peer_cache.ts";
import { runBlixard } from "../tests/helpers/cli.ts";
import {
  NodeGroup,
  type NodeProcess,
  type NodeProcessOptions,
} from "../tests/helpers/node_process.ts";
import { freeBindPort, parsePortRange, useBindPortRange } from "../tests/helpers/ports.ts";
import { benchJoinData, keysForMegabytes } from "./bench_join_data.ts";
import { NODE_V8_FLAGS } from "./compile.ts";
import { bundleNode } from "./bundle.ts";
import { summarize, type Summary } from "./bench_summary.ts";
import {
  benchJoins,
  benchTicketJoin,
  type JoinFigures,
  type JoinPhases,
  joinPhases,
  phaseRows,
  summarizePhases,
} from "./bench_join_phases.ts";

export { summarize, type Summary };

const SECTIONS = [
  "startup",
  "formation",
  "join",
  "failover",
  "throughput",
  "idle",
  "cache",
  "storm",
  "joindata",
  "ticket",
  "mdns",
] as const;
type Section = typeof SECTIONS[number];
const CONCURRENCY_LEVELS = [1, 16, 64, 256];
/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;
const VALUE_BYTES = 256;
const POLL_MS = 2;
const WAIT_MS = 30_000;
/** Joiners of the storm, and the voters the default `--max-voters` allows. */
const STORM_JOINERS = 10;
const STORM_VOTERS = 5;
/** A storm is polled less often than 2 ms: thirteen nodes already share the cores. */
const STORM_POLL_MS = 10;
/**
 * Deadline of waits on many processes started at once (formation, storm): on a loaded
 * machine their start alone takes long, and the figure then says how long.
 */
const MANY_NODES_WAIT_MS = 120_000;

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function getStatus(node: NodeProcess): Promise<StatusJson | null> {
  return fetchStatus(node.httpPort);
}

/** How every node of a run is started: Deno flags and which `main.ts`. */
const nodeDefaults: Pick<NodeProcessOptions, "denoFlags" | "mainPath"> = {};

/** CPU seconds (user + system) that `pid` has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces; the fields after it are plain numbers.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of proc(5); `fields` starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** Seconds since boot: the clock of a V8 CPU profile's `startTime`, so windows line up. */
function uptimeSeconds(): number {
  return Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
}

/**
 * A field of `/proc/<pid>/status` in MiB: `VmRSS` (all resident memory) by default, or
 * `RssAnon`, the process's own memory without the pages of files it maps (mostly the Deno
 * executable's code, which every node on a machine shares).
 */
export function residentMiB(pid: number, field: "VmRSS" | "RssAnon" = "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  if (match === null) throw new Error(`no ${field} for pid ${pid}`);
  return Number(match[1]) / 1024;
}

/**
 * CPU time (user + system) `pid` has used, in ms: summed over the nodes of a formation it
 * gives the floor of its wall time on this machine's cores, whatever else runs.
 */
function cpuMs(pid: number): number {
  return cpuSeconds(pid) * 1000;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = await probe();
    if (value !== null) return value;
    await sleep(POLL_MS);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function isFormed(status: StatusJson | null, voters: number): boolean {
  return status !== null && status.leader_id !== null && status.role !== "joining" &&
    status.role !== "learner" &&
    status.members.filter((member) => member.role === "voter").length === voters;
}

/**
 * Starts `size` nodes at once (2.. join through node 1) and resolves when all agree on
 * `size` voters: beyond the default voter cap, every node gets `--max-voters size`.
 */
async function formAtOnce(
  group: NodeGroup,
  size: number,
): Promise<{
  nodes: NodeProcess[];
  elapsedMs: number;
  cpuMs: number;
  afterReadyMs: number;
  phases: JoinPhases;
}> {
  const ports = [];
  for (let i = 0; i < size; i++) ports.push(await freeBindPort());
  const args = size > STORM_VOTERS ? ["--max-voters", String(size)] : [];
  const startedMs = performance.now();
  const spawnedAtMs = Date.now();
  const nodes: NodeProcess[] = [];
  for (let id = 1; id <= size; id++) {
    const peers = id === 1 ? [] : [`127.0.0.1:${ports[0]}`];
    nodes.push(await group.start({ ...nodeDefaults, id, bindPort: ports[id - 1]!, peers, args }));
  }
  await waitFor("formation", async () => {
    const statuses = await Promise.all(nodes.map(getStatus));
    const leaders = new Set(statuses.map((status) => status?.leader_id));
    return statuses.every((status) => isFormed(status, size)) && leaders.size === 1 ? true : null;
  }, MANY_NODES_WAIT_MS);
  const elapsedMs = performance.now() - startedMs;
  return {
    nodes,
    elapsedMs,
    cpuMs: nodes.reduce((sum, node) => sum + cpuMs(node.pid), 0),
    afterReadyMs: Date.now() - Math.max(...nodes.map(readyAtMs)),
    phases: formationPhases(nodes, spawnedAtMs),
  };
}

/**
 * Where a formation's time goes, in ms since the first spawn: the founder's start, then the
 * phases of the joiner promoted last (`bench_join_phases.ts`), which the formation waits for.
 */
export function formationPhases(nodes: NodeProcess[], spawnedAtMs: number): JoinPhases {
  const [founder, ...joiners] = nodes;
  const phases: JoinPhases = new Map();
  const founded = founder!.logRecords().find((record) =>
    String(record.message).startsWith("founded cluster")
  );
  if (founded !== undefined) {
    phases.set("founder: cluster founded", Date.parse(String(founded.timestamp)) - spawnedAtMs);
  }
  phases.set("founder: ready", readyAtMs(founder!) - spawnedAtMs);
  const last = joiners
    .map((joiner) => joinPhases(joiner, { leader: founder!, spawnedAtMs }))
    .sort((a, b) => voterAtMs(b) - voterAtMs(a))[0];
  for (const [name, ms] of last ?? []) phases.set(`last joiner: ${name}`, ms);
  return phases;
}

function voterAtMs(phases: JoinPhases): number {
  return [...phases.values()].reduce(
    (latest, ms) => Math.max(latest, ms),
    Number.NEGATIVE_INFINITY,
  );
}

async function leaderOf(nodes: NodeProcess[]): Promise<NodeProcess> {
  return await waitFor("a leader", async () => {
    const status = await getStatus(nodes.find((node) => node.exitStatus === null)!);
    return nodes.find((node) => node.id === status?.leader_id && node.exitStatus === null) ?? null;
  });
}

/**
 * Starts one node in `group` and waits for its `/health` 200: the node, spawn → healthy in
 * ms, and the CPU it used until then (what a loaded machine distorts least, and what bounds
 * many starts at once). Throws if the node exits first.
 */
export async function startUntilHealthy(
  group: NodeGroup,
  options: Parameters<NodeGroup["start"]>[0],
): Promise<{ node: NodeProcess; startupMs: number; cpuMs: number }> {
  const node = await group.start(options);
  await waitFor("/health", async () => {
    if (node.exitStatus !== null) throw new Error(`node ${node.id} exited:\n${node.stderr}`);
    try {
      const response = await fetch(`http://127.0.0.1:${node.httpPort}/health`);
      await response.body?.cancel();
      return response.status === 200 ? true : null;
    } catch {
      return null;
    }
  });
  return { node, startupMs: performance.now() - node.startedAtMs, cpuMs: cpuMs(node.pid) };
}

async function benchStartup(
  runs: number,
  stopGracefully: boolean,
): Promise<{ startupMs: Summary; cpuMs: Summary; idleRssMiB: Summary; idleRssAnonMiB: Summary }> {
  const startup: number[] = [];
  const cpu: number[] = [];
  const rss: number[] = [];
  const rssAnon: number[] = [];
  for (let run = 0; run < runs; run++) {
    const group = new NodeGroup();
    try {
      const { node, startupMs, cpuMs } = await startUntilHealthy(group, {
        ...nodeDefaults,
        id: 1,
      });
      startup.push(startupMs);
      cpu.push(cpuMs);
      await sleep(2000);
      rss.push(residentMiB(node.pid));
      rssAnon.push(residentMiB(node.pid, "RssAnon"));
      // A node writes its CPU profile only when it exits on its own.
      if (stopGracefully) await node.stop();
    } finally {
      await group.cleanup();
    }
  }
  return {
    startupMs: summarize(startup),
    cpuMs: summarize(cpu),
    idleRssMiB: summarize(rss),
    idleRssAnonMiB: summarize(rssAnon),
  };
}

async function benchFormation(
  runs: number,
  size: number,
  stopGracefully: boolean,
): Promise<
  { wallMs: Summary; cpuMs: Summary; afterReadyMs: Summary; phases: [string, Summary][] }
> {
  const times: number[] = [];
  const cpu: number[] = [];
  const afterReady: number[] = [];
  const phases: JoinPhases[] = [];
  for (let run = 0; run < runs; run++) {
    const group = new NodeGroup();
    try {
      const formed = await formAtOnce(group, size);
      times.push(formed.elapsedMs);
      cpu.push(formed.cpuMs);
      afterReady.push(formed.afterReadyMs);
      phases.push(formed.phases);
      if (stopGracefully) await Promise.all(formed.nodes.map((node) => node.stop()));
    } finally {
      await group.cleanup();
    }
  }
  return {
    wallMs: summarize(times),
    cpuMs: summarize(cpu),
    afterReadyMs: summarize(afterReady),
    phases: summarizePhases(phases),
  };
}

function benchJoin(runs: number): Promise<JoinFigures> {
  return benchJoins(runs, {
    formCluster: async (group) => (await formAtOnce(group, 3)).nodes,
    nodeDefaults,
    firstId: 10,
    joinerOptions: ({ nodes }) => Promise.resolve({ peers: [nodes[1]!.address] }),
  });
}

async function benchFailover(runs: number, size: number): Promise<Summary> {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const group = new NodeGroup();
    try {
      const { nodes } = await formAtOnce(group, size);
      const leader = await leaderOf(nodes);
      const follower = nodes.find((node) => node !== leader)!;
      const client = await BlixardClient.connect(follower.address, { attemptTimeoutMs: 1000 });
      try {
        let killedAtMs: number | null = null;
        let failoverMs: number | null = null;
        const writer = (async () => {
          for (let i = 0; failoverMs === null; i++) {
            const issuedAtMs = performance.now();
            await client.put(`failover/${i}`, "x".repeat(VALUE_BYTES), { timeoutMs: 20_000 });
            if (killedAtMs !== null && issuedAtMs > killedAtMs) {
              failoverMs = performance.now() - killedAtMs;
            }
          }
        })();
        await sleep(500 + Math.random() * 500);
        killedAtMs = performance.now();
        await leader.kill();
        await writer;
        times.push(failoverMs!);
      } finally {
        await client.close();
      }
    } finally {
      await group.cleanup();
    }
  }
  return summarize(times);
}

/**
 * Join storms into a fresh 3-node cluster per run: from the spawn of the first of
 * `STORM_JOINERS` joiners (all naming node 2) until the leader lists every node, with
 * `STORM_VOTERS` voters and none still joining. Also spawn → "ready" log line of the
 * slowest joiner: the part of the figure that is only starting processes.
 */
async function benchStorm(
  runs: number,
): Promise<{ admittedMs: Summary; startupMs: Summary; cpuMs: Summary }> {
  const admitted: number[] = [];
  const startups: number[] = [];
  const cpu: number[] = [];
  for (let run = 0; run < runs; run++) {
    const group = new NodeGroup();
    try {
      const { nodes } = await formAtOnce(group, 3);
      const startedMs = performance.now();
      const spawnedAtMs = Date.now();
      const joiners = await Promise.all(
        Array.from(
          { length: STORM_JOINERS },
          (_, i) => group.start({ ...nodeDefaults, id: 10 + i, peers: [nodes[1]!.address] }),
        ),
      );
      const all = [...nodes, ...joiners];
      await waitFor("the storm admitted", async () => {
        const status = await getStatus(nodes[0]!);
        const leader = all.find((node) => node.id === status?.leader_id);
        const view = leader === undefined ? null : await getStatus(leader);
        return view !== null && isAdmitted(view, all.length) ? true : null;
      }, MANY_NODES_WAIT_MS);
      admitted.push(performance.now() - startedMs);
      cpu.push(joiners.reduce((sum, node) => sum + cpuMs(node.pid), 0));
      startups.push(Math.max(...joiners.map(readyAtMs)) - spawnedAtMs);
      await sleep(STORM_POLL_MS);
    } finally {
      await group.cleanup();
    }
  }
  return { admittedMs: summarize(admitted), startupMs: summarize(startups), cpuMs: summarize(cpu) };
}

function isAdmitted(status: StatusJson, members: number): boolean {
  const voters = status.members.filter((member) => member.role === "voter").length;
  return status.role === "leader" && status.members.length === members &&
    voters === Math.min(STORM_VOTERS, members) &&
    (status.joins ?? []).every((join) => join.phase === "learner");
}

/** When the node logged "ready", wall-clock ms (`NaN` if it has not). */
function readyAtMs(node: NodeProcess): number {
  const ready = node.logRecords().find((record) => String(record.message).startsWith("ready "));
  return Date.parse(String(ready?.timestamp));
}

interface ThroughputFigure {
  concurrency: number;
  writesPerSecond: Summary;
  p50Ms: Summary;
  p99Ms: Summary;
  /**
   * CPU seconds per 1,000 acknowledged writes of each node, the leader first, then the
   * followers by id; and of the three together.
   */
  cpuSecondsPer1000: { leader: Summary; followers: Summary[]; cluster: Summary };
}

async function benchThroughput(
  runs: number,
  writeSeconds: number,
  concurrencyLevels: number[],
  stopGracefully: boolean,
): Promise<{
  levels: ThroughputFigure[];
  rssIdleMiB: number[];
  rssAfterMiB: number[];
  /** The same without file-backed pages (`RssAnon`). */
  rssIdleAnonMiB: number[];
  rssAfterAnonMiB: number[];
  /** V8's heap after the writes, per node: what of `RssAnon` is the JS heap's. */
  heapAfterMiB: V8HeapFigures[];
  /** Process ids, the leader first: which CPU profile is whose. */
  pids: number[];
  /** Measured windows in seconds since boot, for `profile_top.ts --from --to`. */
  windows: { concurrency: number; fromUptime: number; toUptime: number }[];
}> {
  const group = new NodeGroup();
  try {
    const { nodes } = await formAtOnce(group, 3);
    await sleep(2000);
    const rssIdleMiB = nodes.map((node) => residentMiB(node.pid));
    const rssIdleAnonMiB = nodes.map((node) => residentMiB(node.pid, "RssAnon"));
    const leader = await leaderOf(nodes);
    const byRole = [leader, ...nodes.filter((node) => node !== leader)];
    const client = await BlixardClient.connect(leader.address);
    const value = new Uint8Array(VALUE_BYTES).fill(120);
    const levels: ThroughputFigure[] = [];
    const windows: { concurrency: number; fromUptime: number; toUptime: number }[] = [];
    try {
      for (const concurrency of concurrencyLevels) {
        const rates: number[] = [];
        const p50s: number[] = [];
        const p99s: number[] = [];
        const cpuPer1000 = byRole.map((): number[] => []);
        for (let run = 0; run < runs; run++) {
          const latencies: number[] = [];
          const measure = async (durationMs: number, record: boolean) => {
            const endMs = performance.now() + durationMs;
            await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
              for (let i = 0; performance.now() < endMs; i++) {
                const startMs = performance.now();
                await client.put(`bench/${concurrency}/${worker}/${i % 1000}`, value);
                if (record) latencies.push(performance.now() - startMs);
              }
            }));
          };
          await measure(300, false);
          const cpuBefore = byRole.map((node) => cpuSeconds(node.pid));
          const startedMs = performance.now();
          const fromUptime = uptimeSeconds();
          await measure(writeSeconds * 1000, true);
          const elapsedSeconds = (performance.now() - startedMs) / 1000;
          windows.push({ concurrency, fromUptime, toUptime: uptimeSeconds() });
          byRole.forEach((node, i) => {
            const used = cpuSeconds(node.pid) - cpuBefore[i]!;
            cpuPer1000[i]!.push(used / latencies.length * 1000);
          });
          latencies.sort((a, b) => a - b);
          rates.push(latencies.length / elapsedSeconds);
          p50s.push(percentile(latencies, 0.5));
          p99s.push(percentile(latencies, 0.99));
        }
        levels.push({
          concurrency,
          writesPerSecond: summarize(rates),
          p50Ms: summarize(p50s),
          p99Ms: summarize(p99s),
          cpuSecondsPer1000: {
            leader: summarize(cpuPer1000[0]!),
            followers: cpuPer1000.slice(1).map(summarize),
            cluster: summarize(
              cpuPer1000[0]!.map((_, run) => cpuPer1000.reduce((sum, node) => sum + node[run]!, 0)),
            ),
          },
        });
        console.error(`  ${concurrency} in flight: ${summarize(rates).median.toFixed(0)} writes/s`);
      }
    } finally {
      await client.close();
    }
    const rssAfterMiB = nodes.map((node) => residentMiB(node.pid));
    const rssAfterAnonMiB = nodes.map((node) => residentMiB(node.pid, "RssAnon"));
    // Only after the resident figures: the first scrape loads prom-client into the node.
    const heapAfterMiB = await Promise.all(nodes.map(v8HeapOf));
    // A node writes its CPU profile only when it exits on its own.
    if (stopGracefully) await Promise.all(nodes.map((node) => node.stop()));
    return {
      levels,
      rssIdleMiB,
      rssAfterMiB,
      rssIdleAnonMiB,
      rssAfterAnonMiB,
      heapAfterMiB,
      pids: byRole.map((node) => node.pid),
      windows,
    };
  } finally {
    await group.cleanup();
  }
}

/** Sizes of a node's V8 heap in MiB, from its `/metrics`. */
interface V8HeapFigures {
  /** All spaces: what V8 holds, used or not. */
  total: number;
  /** The young generation (`new` space), which grows under load and does not shrink back. */
  young: number;
  /** What live and not yet collected objects take. */
  used: number;
}

async function v8HeapOf(node: NodeProcess): Promise<V8HeapFigures> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
  const mib = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
  return {
    total: mib(/^blixard_nodejs_heap_size_total_bytes (\S+)/m),
    young: mib(/^blixard_nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m),
    used: mib(/^blixard_nodejs_heap_size_used_bytes (\S+)/m),
  };
}

async function benchIdle(
  seconds: number,
): Promise<{ seconds: number; leaderChanges: number; termChanges: number }> {
  const group = new NodeGroup();
  try {
    const { nodes } = await formAtOnce(group, 3);
    const before = await Promise.all(nodes.map(getStatus));
    const leaderChangesBefore = await Promise.all(nodes.map(leaderChangesOf));
    await sleep(seconds * 1000);
    const after = await Promise.all(nodes.map(getStatus));
    const leaderChangesAfter = await Promise.all(nodes.map(leaderChangesOf));
    const termChanges = after.reduce((sum, status, i) => sum + (status!.term - before[i]!.term), 0);
    const leaderChanges = leaderChangesAfter.reduce(
      (sum, value, i) => sum + value - leaderChangesBefore[i]!,
      0,
    );
    return { seconds, leaderChanges, termChanges };
  } finally {
    await group.cleanup();
  }
}

async function leaderChangesOf(node: NodeProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
  const match = /^blixard_raft_leader_changes_total (\d+)/m.exec(text);
  return Number(match?.[1] ?? Number.NaN);
}

/** `kv get` with a warm peer cache and without one: as CLI processes, and in this process. */
async function benchCache(runs: number): Promise<Record<string, Summary>> {
  const group = new NodeGroup();
  const cacheHome = await Deno.makeTempDir({ prefix: "blixard-bench-cache-" });
  try {
    const node = await group.start({ ...nodeDefaults, id: 1 });
    await waitFor("a leader", async () => {
      const status = await getStatus(node);
      return isFormed(status, 1) ? status : null;
    });
    const put = await runBlixard(["kv", "put", "k", "v", "--peer", node.address], { cacheHome });
    if (put.code !== 0) throw new Error(`kv put failed: ${put.stderr}`);
    const times: Record<string, number[]> = { cliWarm: [], cliCold: [], apiWarm: [], apiCold: [] };
    const timed = async (name: string, work: () => Promise<void>) => {
      const startMs = performance.now();
      await work();
      times[name]!.push(performance.now() - startMs);
    };
    const cli = (extra: string[]) => async () => {
      const run = await runBlixard(["kv", "get", "k", "--peer", node.address, ...extra], {
        cacheHome,
      });
      if (run.code !== 0) throw new Error(`kv get failed: ${run.stderr}`);
    };
    const api = (cached: boolean) => async () => {
      const peerCache = cached ? await PeerCache.open(`${cacheHome}/blixard/peers.json`) : null;
      const client = await BlixardClient.connect(node.address, { peerCache });
      await client.get("k");
      await client.close();
    };
    // Alternated, so that a slow moment of the machine falls on both alike.
    for (let run = 0; run < runs; run++) {
      await timed("cliWarm", cli([]));
      await timed("cliCold", cli(["--no-cache"]));
      await timed("apiWarm", api(true));
      await timed("apiCold", api(false));
    }
    return Object.fromEntries(Object.entries(times).map(([name, ms]) => [name, summarize(ms)]));
  } finally {
    await group.cleanup();
    await Deno.remove(cacheHome, { recursive: true });
  }
}

function row(name: string, summary: Summary, unit: string, target = ""): string {
  const number = (value: number) => value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0);
  return `${name.padEnd(44)} ${number(summary.median).padStart(8)} ${unit.padEnd(9)} ` +
    `(min ${number(summary.min)}, max ${number(summary.max)}, ${summary.runs} runs)${
      target === "" ? "" : `  target ${target}`
    }`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "7" },
      "formation-runs": { type: "string", default: "20" },
      nodes: { type: "string", default: "3" },
      only: { type: "string" },
      "idle-seconds": { type: "string", default: "20" },
      "write-seconds": { type: "string", default: "3" },
      json: { type: "string" },
      levels: { type: "string" },
      "deno-flags": { type: "string" },
      "cpu-prof": { type: "string" },
      main: { type: "string" },
      mb: { type: "string", default: "45" },
      ports: { type: "string" },
    },
  });
  if (values.ports !== undefined) {
    const range = parsePortRange(values.ports);
    if (range === null) {
      throw new RangeError(`--ports ${values.ports}: give LOW-HIGH, e.g. 24000-24999`);
    }
    useBindPortRange(...range);
  }
  // The nodes run as shipped (`scripts/compile.ts`) unless --deno-flags says otherwise.
  const denoFlags = (values["deno-flags"] ?? `--v8-flags=${NODE_V8_FLAGS.join(",")}`)
    .split(" ").filter((flag) => flag !== "");
  if (values["cpu-prof"] !== undefined) {
    await Deno.mkdir(values["cpu-prof"], { recursive: true });
    denoFlags.push("--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`);
  }
  nodeDefaults.denoFlags = denoFlags;
  if (values.main === undefined) console.error("bundling the nodes' program…");
  const mainPath = values.main ?? await bundleNode();
  nodeDefaults.mainPath = mainPath;
  const concurrencyLevels = values.levels?.split(",").map(Number) ?? CONCURRENCY_LEVELS;
  if (concurrencyLevels.some((level) => !Number.isInteger(level) || level < 1)) {
    throw new Error(`--levels ${values.levels}: give positive integers, e.g. --levels 1,64`);
  }
  const runs = Number(values.runs);
  const sizes = values.nodes.split(",").map((size) => Number(size.trim()));
  if (sizes.some((size) => !Number.isSafeInteger(size) || size < 1 || size > 9)) {
    throw new RangeError(`--nodes ${values.nodes}: must be node counts from 1 to 9, e.g. 3,5,7`);
  }
  const selected = new Set<Section>(
    values.only === undefined
      ? SECTIONS
      : values.only.split(",").map((name) => name.trim() as Section),
  );
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: {
      cpus: navigator.hardwareConcurrency,
      os: Deno.build.target,
      deno: Deno.version.deno,
      loadAverage: Deno.loadavg(),
    },
    nodes: { denoFlags, main: mainPath },
  };
  const lines: string[] = [
    `nodes run ${mainPath}${values.main === undefined ? " (the minified bundle, built now)" : ""}`,
  ];
  if (selected.has("startup")) {
    console.error("startup…");
    const startup = await benchStartup(runs, values["cpu-prof"] !== undefined);
    results.startup = startup;
    lines.push(row("single-node start → /health 200", startup.startupMs, "ms", "< 250 ms"));
    lines.push(row("  CPU of the node until then", startup.cpuMs, "ms"));
    lines.push(row("idle resident memory, single node", startup.idleRssMiB, "MiB", "< 64 MiB"));
    lines.push(row("  without mapped files (RssAnon)", startup.idleRssAnonMiB, "MiB"));
  }
  if (selected.has("formation")) {
    const targets: Record<number, string> = {
      3: "median < 400, max < 1000",
      5: "< 1000",
      7: "< 1500",
    };
    for (const size of sizes) {
      console.error(`formation of ${size}…`);
      const formation = await benchFormation(
        Number(values["formation-runs"]),
        size,
        values["cpu-prof"] !== undefined,
      );
      // The 3-node figure keeps its name in the JSON, so that older results compare.
      const name = size === 3 ? "formation" : `formation${size}`;
      results[name] = formation.wallMs;
      results[`${name}CpuMs`] = formation.cpuMs;
      results[`${name}AfterReadyMs`] = formation.afterReadyMs;
      results[`${name}Phases`] = formation.phases;
      lines.push(
        row(
          `${size}-node formation, nothing → ${size} voters`,
          formation.wallMs,
          "ms",
          targets[size] ?? "",
        ),
        row(`  CPU time of the ${size} nodes until formed`, formation.cpuMs, "ms"),
        row(`  last node's "ready" → formed`, formation.afterReadyMs, "ms"),
        "  phases, median ms since the first spawn:",
        ...phaseRows(formation.phases),
      );
    }
  }
  if (selected.has("join")) {
    console.error("join…");
    const join = await benchJoin(runs);
    // The figure keeps its name in the JSON, so that older results compare.
    results.join = join.startToVoterMs;
    results.joinPhases = join.phases;
    lines.push(row("join, joiner process start → voter", join.startToVoterMs, "ms", "< 250 ms"));
    lines.push("  phases, median ms since the joiner's spawn:", ...phaseRows(join.phases));
  }
  if (selected.has("failover")) {
    for (const size of sizes) {
      console.error(`failover of ${size}…`);
      const failover = await benchFailover(runs, size);
      results[size === 3 ? "failover" : `failover${size}`] = failover;
      lines.push(
        row(`failover, ${size} nodes, kill -9 leader → next write`, failover, "ms", "< 600 ms"),
      );
    }
  }
  if (selected.has("storm")) {
    console.error("storm…");
    const storm = await benchStorm(Math.max(1, Math.min(runs, 5)));
    results.storm = storm;
    lines.push(row("join storm, 10 into 3 → all admitted", storm.admittedMs, "ms", "< 5000 ms"));
    lines.push(row("  of which spawn → ready, slowest joiner", storm.startupMs, "ms"));
    lines.push(row("  CPU time of the 10 joiners until admitted", storm.cpuMs, "ms"));
  }
  if (selected.has("joindata")) {
    const mb = Number(values.mb);
    if (!(mb > 0)) throw new RangeError(`--mb ${values.mb}: give a size in MB, e.g. --mb 45`);
    console.error(`join into ${mb} MB of state…`);
    const joins = await benchJoinData({
      keys: keysForMegabytes(mb, 512),
      valueBytes: 512,
      runs: Math.max(1, Math.min(runs, 3)),
      writeSeconds: 6,
      compactionEntries: 3000,
      mainPath,
      denoFlags,
    });
    results.joindata = joins;
    const figure = (pick: (run: typeof joins[number]) => number) => summarize(joins.map(pick));
    lines.push(
      row(
        `join into ${mb} MB of state, start → voter`,
        figure((run) => run.joinMs),
        "ms",
        "< 5000 ms",
      ),
      row("  CPU time of the leader during the join", figure((run) => run.cpuSeconds.leader), "s"),
      row("  CPU time of the joiner until voter", figure((run) => run.cpuSeconds.joiner), "s"),
      row(
        "  leader peak RssAnon / idle",
        figure((run) => run.leader.peakAnon / run.leader.idleAnon),
        "×",
        "< 2×",
      ),
      row(
        "  joiner peak RssAnon / idle",
        figure((run) => run.joiner.peakAnon / run.joiner.idleAnon),
        "×",
        "< 2×",
      ),
      row(
        "largest ack gap, 64 in flight, compactions",
        figure((run) => run.ackGapMs ?? 0),
        "ms",
        "< 200 ms",
      ),
    );
  }
  if (selected.has("throughput")) {
    console.error("throughput…");
    const throughput = await benchThroughput(
      Math.max(1, Math.min(runs, 3)),
      Number(values["write-seconds"]),
      concurrencyLevels,
      values["cpu-prof"] !== undefined,
    );
    results.throughput = throughput;
    for (const level of throughput.levels) {
      lines.push(
        row(`writes/s, ${level.concurrency} in flight`, level.writesPerSecond, "writes/s"),
      );
      lines.push(row(`  p50 latency, ${level.concurrency} in flight`, level.p50Ms, "ms"));
      lines.push(row(`  p99 latency, ${level.concurrency} in flight`, level.p99Ms, "ms"));
      const cpu = level.cpuSecondsPer1000;
      lines.push(row(`  CPU-s/1000 writes, leader`, cpu.leader, "s"));
      cpu.followers.forEach((follower, i) => {
        lines.push(row(`  CPU-s/1000 writes, follower ${i + 1}`, follower, "s"));
      });
      lines.push(row(`  CPU-s/1000 writes, 3 nodes together`, cpu.cluster, "s"));
    }
    lines.push(
      `resident memory per node, idle:        ${
        throughput.rssIdleMiB.map((v) => v.toFixed(1)).join(", ")
      } MiB`,
    );
    lines.push(
      `resident memory per node, after writes: ${
        throughput.rssAfterMiB.map((v) => v.toFixed(1)).join(", ")
      } MiB`,
    );
    lines.push(
      `  without mapped files (RssAnon), idle:  ${
        throughput.rssIdleAnonMiB.map((v) => v.toFixed(1)).join(", ")
      } MiB; after writes: ${throughput.rssAfterAnonMiB.map((v) => v.toFixed(1)).join(", ")} MiB`,
    );
    lines.push(
      `  of which V8's heap after writes (young generation, used): ${
        throughput.heapAfterMiB.map((heap) =>
          `${heap.total.toFixed(1)} (${heap.young.toFixed(1)}, ${heap.used.toFixed(1)})`
        ).join(", ")
      } MiB`,
    );
  }
  if (selected.has("idle")) {
    console.error("idle…");
    const idle = await benchIdle(Number(values["idle-seconds"]));
    results.idle = idle;
    lines.push(
      `idle 3-node cluster for ${idle.seconds} s: ${idle.leaderChanges} leader changes, ${idle.termChanges} term changes`,
    );
  }
  if (selected.has("cache")) {
    console.error("cache…");
    const cache = await benchCache(runs);
    results.cache = cache;
    lines.push(row("kv get CLI process, warm peer cache", cache.cliWarm!, "ms"));
    lines.push(row("kv get CLI process, --no-cache", cache.cliCold!, "ms"));
    lines.push(row("BlixardClient connect + get, cached", cache.apiWarm!, "ms"));
    lines.push(row("BlixardClient connect + get, no cache", cache.apiCold!, "ms"));
  }
  if (selected.has("ticket")) {
    console.error("ticket join…");
    const ticket = await benchTicketJoin(runs, {
      formCluster: async (group) => (await formAtOnce(group, 3)).nodes,
      nodeDefaults,
    });
    results.ticketJoin = { startToVoterMs: ticket.startToVoterMs, phases: ticket.phases };
    lines.push(
      row("ticket join, joiner process start → voter", ticket.startToVoterMs, "ms", "< 400 ms"),
    );
    lines.push("  phases, median ms since the joiner's spawn:", ...phaseRows(ticket.phases));
  }
  if (selected.has("mdns")) {
    console.error("mDNS…");
    const { benchMdns, mdnsRows } = await import("./bench_mdns.ts");
    const mdns = await benchMdns(runs, nodeDefaults);
    results.mdns = mdns;
    lines.push(...mdnsRows(mdns));
  }
  console.log(lines.join("\n"));
  const path = values.json ??
    `bench-results/bench-${(results.date as string).replaceAll(":", "-")}.json`;
  await Deno.mkdir(path.split("/").slice(0, -1).join("/") || ".", { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nJSON: ${path}`);
}
