/**
 * The faults, each one cycle of break, hold and repair on a real cluster, grouped in the
 * profiles `deno task chaos --profile` selects. A fault returns once it has repaired what
 * it broke (restarted, resumed, healed, freed); the runner then waits for the cluster to
 * settle and checks the cycle's history.
 *
 * Hold times exceed the election timeout (300–600 ms) so that every fault can cost the
 * leader its leadership, and are drawn at random so that faults meet the Ready loop at
 * different points.
 *
 * @module
 */

import type { ClusterSecret } from "../../../src/auth/cluster_secret.ts";
import { measureWriter, startFloodProcess } from "../../helpers/flood_process.ts";
import type { NodeProcess } from "../../helpers/node_process.ts";
import type { ChaosCluster } from "./chaos_cluster.ts";
import { addObservation, addWriterSample, type FaultFigures, QUIET_FAULT } from "./chaos_report.ts";
import { type Cut, cutsBetween, type NftPartition } from "./nft_partition.ts";
import type { TmpfsDisk } from "./tmpfs_disk.ts";

/** What a fault may use. */
export interface FaultContext {
  cluster: ChaosCluster;
  /** The harness's nftables table (faults that need `nft` only). */
  partition: NftPartition | null;
  /** Each member's tmpfs, by node id (faults that need `tmpfs` only). */
  disks: ReadonlyMap<number, TmpfsDisk>;
  /** The cycle's number within its run, from 0. */
  cycle: number;
  /** Where a fault notes what it saw (how a node met a full disk). */
  figures: FaultFigures;
  /** The cluster's secret, when the fault asked for one (`Fault.clusterSecret`). */
  clusterSecret: ClusterSecret | null;
}

/** One kind of fault. */
export interface Fault {
  name: string;
  profile: ProfileName;
  /** `nft`: root and nftables; `tmpfs`: root and mount; `null`: nothing. */
  needs: "nft" | "tmpfs" | null;
  /** Cycles `deno task chaos` runs by default (the counts). */
  defaultCycles: number;
  /** The cluster runs with a cluster secret (so that a stranger is one). */
  clusterSecret?: boolean;
  /** Breaks, holds, repairs. */
  inject(context: FaultContext): Promise<void>;
}

/** The profiles, each selectable with `--profile`. */
export const PROFILE_NAMES = [
  "crashes",
  "partitions",
  "pauses",
  "disk",
  "membership",
  "floods",
] as const;
/** A profile's name. */
export type ProfileName = typeof PROFILE_NAMES[number];

/** Election timeout's upper end (ms): holds start above it. */
const ELECTION_TIMEOUT_MS_MAX = 600;
/** How long a flapping network keeps changing before it heals. */
const FLAPPING_MS = 6_000;
/** Most changes of one flapping cycle (bounded even if timers misbehave). */
const FLAPS_MAX = 10;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A hold between `lowMs` and `highMs`. */
function holdMs(lowMs = 2 * ELECTION_TIMEOUT_MS_MAX, highMs = 5 * ELECTION_TIMEOUT_MS_MAX) {
  return lowMs + Math.floor(Math.random() * (highMs - lowMs));
}

function pick<T>(items: readonly T[]): T {
  if (items.length === 0) throw new Error("nothing to pick from");
  return items[Math.floor(Math.random() * items.length)]!;
}

async function leaderAndFollower(cluster: ChaosCluster) {
  const leader = await cluster.leader();
  return { leader, follower: pick(cluster.othersThan(leader)) };
}

function ports(nodes: readonly NodeProcess[]): number[] {
  return nodes.map((node) => node.bindPort);
}

async function crash(cluster: ChaosCluster, victims: readonly NodeProcess[]): Promise<void> {
  await Promise.all(victims.map((node) => cluster.kill(node.id)));
  await sleep(holdMs(100, ELECTION_TIMEOUT_MS_MAX * 2));
  await Promise.all(victims.map((node) => cluster.restart(node.id)));
}

async function pause(node: NodeProcess): Promise<void> {
  node.pause();
  try {
    await sleep(holdMs());
  } finally {
    node.resume();
  }
}

/** Holds `cuts` for a while, then heals. */
async function partitioned(partition: NftPartition | null, cuts: Cut[]): Promise<void> {
  if (partition === null) throw new Error("this fault needs the nftables table");
  await partition.set(cuts);
  try {
    await sleep(holdMs());
  } finally {
    await partition.heal();
  }
}

/** Cuts `node` off from every other live member, both ways. */
function isolating(cluster: ChaosCluster, node: NodeProcess) {
  return cutsBetween([node.bindPort], ports(cluster.othersThan(node)));
}

/** A random split of the live members (a majority and a minority), or one node isolated. */
function randomCuts(cluster: ChaosCluster) {
  const live = [...cluster.live()].sort(() => Math.random() - 0.5);
  const minoritySize = 1 + Math.floor(Math.random() * Math.floor((live.length - 1) / 2));
  const minority = ports(live.slice(0, minoritySize));
  const majority = ports(live.slice(minoritySize));
  return cutsBetween(minority, majority, Math.random() < 0.25 ? "aToB" : "both");
}

const crashes: Fault[] = [
  {
    name: "crash-leader",
    profile: "crashes",
    needs: null,
    defaultCycles: 100,
    inject: async ({ cluster }) => await crash(cluster, [await cluster.leader()]),
  },
  {
    name: "crash-follower",
    profile: "crashes",
    needs: null,
    defaultCycles: 100,
    inject: async ({ cluster }) =>
      await crash(cluster, [(await leaderAndFollower(cluster)).follower]),
  },
  {
    name: "crash-all",
    profile: "crashes",
    needs: null,
    defaultCycles: 100,
    inject: async ({ cluster }) => await crash(cluster, cluster.live()),
  },
];

/** A partition fault: `cutsFor` decides from the leader what to cut; held, then healed. */
function partitionFault(
  name: string,
  cutsFor: (cluster: ChaosCluster, leader: NodeProcess) => Cut[],
): Fault {
  return {
    name,
    profile: "partitions",
    needs: "nft",
    defaultCycles: 50,
    inject: async ({ cluster, partition }) => {
      const leader = await cluster.leader();
      await partitioned(partition, cutsFor(cluster, leader));
    },
  };
}

const partitions: Fault[] = [
  partitionFault("isolate-leader", (cluster, leader) => isolating(cluster, leader)),
  partitionFault(
    "isolate-follower",
    (cluster, leader) => isolating(cluster, pick(cluster.othersThan(leader))),
  ),
  // The leader on the minority side, so the majority must elect another.
  partitionFault("split-majority-minority", (cluster, leader) => {
    const others = [...cluster.othersThan(leader)].sort(() => Math.random() - 0.5);
    const minority = [leader, ...others.slice(0, Math.floor((others.length - 1) / 2))];
    const majority = others.filter((node) => !minority.includes(node));
    return cutsBetween(ports(minority), ports(majority));
  }),
  // The leader's messages are lost, what it hears is not: its followers elect another.
  partitionFault(
    "one-way-from-leader",
    (cluster, leader) => cutsBetween([leader.bindPort], ports(cluster.othersThan(leader)), "aToB"),
  ),
  // The leader speaks but hears nothing: check-quorum must make it step down.
  partitionFault(
    "one-way-to-leader",
    (cluster, leader) => cutsBetween(ports(cluster.othersThan(leader)), [leader.bindPort], "aToB"),
  ),
  {
    name: "flapping",
    profile: "partitions",
    needs: "nft",
    defaultCycles: 50,
    inject: async ({ cluster, partition }) => {
      if (partition === null) throw new Error("this fault needs the nftables table");
      const endMs = performance.now() + FLAPPING_MS;
      try {
        for (let flap = 0; flap < FLAPS_MAX && performance.now() < endMs; flap++) {
          await partition.set(flap % 2 === 0 ? randomCuts(cluster) : []);
          await sleep(holdMs(1_000, 3_000));
        }
      } finally {
        await partition.heal();
      }
    },
  },
];

const pauses: Fault[] = [
  {
    name: "pause-leader",
    profile: "pauses",
    needs: null,
    defaultCycles: 50,
    inject: async ({ cluster }) => await pause(await cluster.leader()),
  },
  {
    name: "pause-follower",
    profile: "pauses",
    needs: null,
    defaultCycles: 50,
    inject: async ({ cluster }) => await pause((await leaderAndFollower(cluster)).follower),
  },
];

/** The node's log lines that say its disk was full, and that it went on after. */
const DISK_FULL_LINE = /the disk of .* is full/g;
const ROOM_AGAIN_LINE = /the disk of .* has room again/g;

function linesMatching(node: NodeProcess, pattern: RegExp): number {
  return node.stderr.match(pattern)?.length ?? 0;
}

/**
 * Fills `node`'s disk while the clients write, holds, and frees it. The node must keep
 * running through it and, when it met the full disk, go on by itself once space is freed
 * (no restart); a node that exits fails the cycle.
 */
async function fillDisk(context: FaultContext, node: NodeProcess): Promise<void> {
  const disk = context.disks.get(node.id);
  if (disk === undefined) throw new Error(`node ${node.id} has no tmpfs`);
  const fullBefore = linesMatching(node, DISK_FULL_LINE);
  await disk.fill();
  try {
    await sleep(holdMs());
  } finally {
    await disk.free();
  }
  const met = linesMatching(node, DISK_FULL_LINE) - fullBefore;
  // Its retry pause is at most 1 s; a loaded machine may take longer to run it.
  const waitMs = context.cluster.recoveryMs;
  const deadlineMs = performance.now() + waitMs;
  while (node.exitStatus === null && linesMatching(node, ROOM_AGAIN_LINE) < fullBefore + met) {
    if (performance.now() > deadlineMs) {
      throw new Error(`node ${node.id} did not go on within ${waitMs} ms of space freed`);
    }
    await sleep(50);
  }
  const status = node.exitStatus;
  if (status !== null) {
    const lastLine = node.stderr.trim().split("\n").findLast((line) => /error|fatal/i.test(line)) ??
      "";
    throw new Error(
      `node ${node.id} exited with code ${status.code} on a full disk: ${lastLine.slice(0, 400)}`,
    );
  }
  addObservation(
    context.figures,
    met > 0
      ? "the node met the full disk, refused requests, and went on without a restart once space was freed"
      : "the fill did not reach the node's writes (its files had room left)",
  );
}

const disk: Fault[] = [
  {
    name: "disk-full-leader",
    profile: "disk",
    needs: "tmpfs",
    defaultCycles: 20,
    inject: async (context) => await fillDisk(context, await context.cluster.leader()),
  },
  {
    name: "disk-full-follower",
    profile: "disk",
    needs: "tmpfs",
    defaultCycles: 20,
    inject: async (context) =>
      await fillDisk(context, (await leaderAndFollower(context.cluster)).follower),
  },
];

/**
 * Membership changes during faults: a new machine joins while a follower is paused, then a
 * follower is killed (-9) and the new machine is removed (even cycles) or leaves (odd
 * cycles), and the killed follower comes back.
 */
async function churn({ cluster, cycle }: FaultContext): Promise<void> {
  const { leader, follower } = await leaderAndFollower(cluster);
  follower.pause();
  let joined: NodeProcess;
  try {
    joined = await cluster.join(pick(cluster.live()));
  } finally {
    follower.resume();
  }
  // The leader refuses a removal that would leave less than a quorum of recently active
  // voters: the resumed follower must be heard from again before another is killed.
  await cluster.settle();
  const victim = pick(cluster.othersThan(joined).filter((node) => node !== leader));
  await cluster.kill(victim.id);
  try {
    if (cycle % 2 === 0) {
      await cluster.remove(
        joined.id,
        pick(cluster.othersThan(joined).filter((node) => node !== victim)),
      );
    } else {
      await cluster.leave(joined.id);
    }
  } finally {
    await cluster.restart(victim.id);
  }
  const status = await joined.waitForExit({ timeoutMs: cluster.recoveryMs });
  if (status.code !== 0) {
    throw new Error(
      `node ${joined.id}, removed, exited with ${status.code}: ${joined.stderr.slice(-500)}`,
    );
  }
}

const membership: Fault[] = [
  {
    name: "join-remove-leave",
    profile: "membership",
    needs: null,
    defaultCycles: 20,
    inject: churn,
  },
];

/** How long the measuring writer runs during each flood cycle. */
const FLOOD_SECONDS = 4;
/** Its puts in flight, and their value (the size `scripts/bench_flood.ts` writes). */
const FLOOD_WRITER_CONCURRENCY = 4;
const FLOOD_VALUE = "v".repeat(256);

/**
 * A stranger (no cluster secret, from 127.0.0.2) floods the leader from a child process
 * while a writer with the secret keeps puts in flight to it; the writer's rate and
 * latencies are the fault's `writer` figures. `flood` `quiet` is the same without a flood,
 * the baseline.
 */
async function flooded(context: FaultContext, flood: string): Promise<void> {
  const { cluster, cycle, figures } = context;
  const leader = await cluster.leader();
  const client = await cluster.connect(leader);
  try {
    // The client's connection and session, before the measurement.
    await client.put(`flood/${cycle}/warmup`, FLOOD_VALUE);
    const stop = await startFloodProcess(flood, leader.httpPort);
    try {
      const measured = await measureWriter(client, {
        seconds: FLOOD_SECONDS,
        concurrency: FLOOD_WRITER_CONCURRENCY,
        prefix: `flood/${cycle}/`,
        value: FLOOD_VALUE,
      });
      addWriterSample(figures, {
        seconds: FLOOD_SECONDS,
        latenciesMs: measured.latenciesMs,
        failed: measured.failed,
      });
    } finally {
      await stop();
    }
  } finally {
    await client.close();
  }
}

const floods: Fault[] = [
  [QUIET_FAULT, "quiet"],
  ["flood-bootstrap", "/bootstrap flood"],
  ["flood-challenge", "cluster.challenge flood"],
  ["flood-join", "cluster.join flood"],
  ["flood-idle-connections", "256 idle stranger connections"],
  ["flood-connection-churn", "stranger connection churn"],
].map(([name, flood]) => ({
  name: name!,
  profile: "floods",
  needs: null,
  defaultCycles: 10,
  clusterSecret: true,
  inject: (context: FaultContext) => flooded(context, flood!),
}));

/** Every fault, in profile order. */
export const FAULTS: readonly Fault[] = [
  ...crashes,
  ...partitions,
  ...pauses,
  ...disk,
  ...floods,
  ...membership,
];
