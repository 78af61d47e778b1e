/**
 * Throughput of the pure Raft core: entries committed (and applied on every node) per
 * CPU-second in a 3-node in-process cluster on `MemoryStorage`, with no faults.
 *
 * Each round the leader receives `batch` proposals of `entryBytes` bytes, then every node
 * runs its production Ready loop (`ReadyDriver`: early send, persist and apply in one
 * transaction, send, advance) and messages are delivered until the cluster is idle, so entries travel in batches the way real Readies carry them. CPU time
 * is `process.cpuUsage()` (user + system) of the whole process. Each figure is the median
 * of several runs, with min and max.
 *
 * Usage: `deno run scripts/bench_core.ts [--entries N] [--runs N] [--batch N] [--entry-bytes N]`
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { ReadyDriver } from "../src/node/replication/ready_driver.ts";
import { RaftCore } from "../src/raft/raft_core.ts";
import type { Entry, Message, NodeId } from "../src/raft/types.ts";
import { MemoryStorage } from "../src/storage/memory_storage.ts";

interface BenchNode {
  core: RaftCore;
  driver: ReadyDriver<void>;
  appliedIndex: number;
}

interface RunResult {
  entries: number;
  cpuSeconds: number;
  wallSeconds: number;
}

function bootstrap(voters: NodeId[]): MemoryStorage {
  const storage = new MemoryStorage();
  const entries: Entry[] = [];
  for (const nodeId of voters) {
    entries.push({
      type: "membership",
      term: 1,
      index: entries.length + 1,
      change: { type: "addLearner", nodeId, context: new Uint8Array() },
    });
  }
  for (const nodeId of voters) {
    entries.push({
      type: "membership",
      term: 1,
      index: entries.length + 1,
      change: { type: "promoteLearner", nodeId },
    });
  }
  storage.persist({
    hardState: { term: 1, vote: 0, commit: entries.length },
    snapshot: null,
    entries,
  });
  return storage;
}

function makeCluster(voters: NodeId[], outbox: Message[]): Map<NodeId, BenchNode> {
  const nodes = new Map<NodeId, BenchNode>();
  let seed = 12345;
  // A fixed LCG is enough here: randomness only spreads the (unused) election timeouts.
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (const id of voters) {
    const storage = bootstrap(voters);
    const core = new RaftCore({
      id,
      storage,
      applied: 0,
      electionTicks: 10,
      heartbeatTicks: 1,
      maxInflightMessages: 256,
      maxMessageBytes: 1 << 20,
      maxUncommittedBytes: 64 << 20,
      preVote: true,
      checkQuorum: true,
      random,
    });
    const node: BenchNode = { core, driver: null!, appliedIndex: 0 };
    node.driver = new ReadyDriver<void>({
      core,
      storage,
      // The state machine only records how far it got.
      stateMachine: {
        restore: () => {},
        applyAll: (entries) => {
          const last = entries.at(-1);
          if (last !== undefined) node.appliedIndex = last.index;
          return [];
        },
      },
      send: (messages) => {
        for (const message of messages) outbox.push(message);
      },
      // The benchmark runs each node's loop itself, in `settle()`.
      scheduler: { soon: () => {} },
    });
    nodes.set(id, node);
  }
  return nodes;
}

/** Runs every node's Ready loop and delivers messages until no node has work. */
function settle(nodes: Map<NodeId, BenchNode>, outbox: Message[]): void {
  for (;;) {
    let busy = false;
    for (const node of nodes.values()) {
      if (!node.core.hasReady()) continue;
      busy = true;
      node.driver.run();
    }
    if (!busy && outbox.length === 0) return;
    const batch = outbox.splice(0);
    for (const message of batch) nodes.get(message.to)!.core.step(message);
  }
}

function run(options: { entries: number; batch: number; entryBytes: number }): RunResult {
  const outbox: Message[] = [];
  const nodes = makeCluster([1, 2, 3], outbox);
  const first = nodes.get(1)!;
  first.core.campaign();
  settle(nodes, outbox);
  if (first.core.status().role !== "leader") throw new Error("node 1 did not become leader");
  const data = new Uint8Array(options.entryBytes);
  const startIndex = first.core.status().commit;
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  let proposed = 0;
  while (proposed < options.entries) {
    const count = Math.min(options.batch, options.entries - proposed);
    for (let i = 0; i < count; i += 1) {
      const result = first.core.propose(data);
      if (!result.ok) throw new Error(`proposal refused: ${JSON.stringify(result.reason)}`);
    }
    proposed += count;
    settle(nodes, outbox);
  }
  const cpu = process.cpuUsage(cpuStart);
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const target = startIndex + options.entries;
  for (const [id, node] of nodes) {
    if (node.appliedIndex < target) {
      throw new Error(`node ${id} applied ${node.appliedIndex} < ${target}`);
    }
  }
  return { entries: options.entries, cpuSeconds: (cpu.user + cpu.system) / 1e6, wallSeconds };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function main(): void {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      entries: { type: "string", default: "200000" },
      runs: { type: "string", default: "7" },
      batch: { type: "string", default: "256" },
      "entry-bytes": { type: "string", default: "16" },
    },
  });
  const options = {
    entries: Number(values.entries),
    batch: Number(values.batch),
    entryBytes: Number(values["entry-bytes"]),
  };
  const runs = Number(values.runs);
  run({ ...options, entries: Math.min(options.entries, 20_000) }); // warm up the JIT
  const rates: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const result = run(options);
    rates.push(result.entries / result.cpuSeconds);
  }
  const summary = {
    benchmark: "raft core, 3 nodes in process, MemoryStorage, no faults",
    entriesPerRun: options.entries,
    batch: options.batch,
    entryBytes: options.entryBytes,
    runs,
    entriesPerCpuSecond: {
      median: Math.round(median(rates)),
      min: Math.round(Math.min(...rates)),
      max: Math.round(Math.max(...rates)),
    },
  };
  console.log(
    `committed entries per CPU-second: median ${summary.entriesPerCpuSecond.median} ` +
      `(min ${summary.entriesPerCpuSecond.min}, max ${summary.entriesPerCpuSecond.max}; ${runs} runs of ` +
      `${options.entries} entries of ${options.entryBytes} bytes, ${options.batch} proposals per round)`,
  );
  console.log(JSON.stringify(summary));
}

if (import.meta.main) main();
