/**
 * Runs faults for a number of cycles on a freshly formed cluster (one fault per cycle, in
 * turn), and adds what each saw to its figures: each cycle's history checked for linearizability (the
 * simulator's checker, `tests/sim/linearizability.ts`), the longest time without an
 * acknowledged write after the fault struck, and at the end every write the run's
 * unique-key writer had acknowledged, read back (`lostWrites`).
 *
 * Everything it sets up (children, the nftables table, tmpfs mounts) is released in
 * `finally`, and registered with `releaseOnSignal` so that SIGINT/SIGTERM release it too.
 *
 * @module
 */

import type { ClusterSecret } from "../../../src/auth/cluster_secret.ts";
import { checkLinearizability } from "../../sim/linearizability.ts";
import { SECRET_TEXT, secretOf, writeSecretFile } from "../../helpers/secrets.ts";
import { WAIT_MS } from "../../helpers/wait_budget.ts";
import { lostWrites, startWriter, type Writer } from "../../helpers/writer.ts";
import { ChaosCluster } from "./chaos_cluster.ts";
import { addDetail, type FaultFigures, longestGapMs } from "./chaos_report.ts";
import type { Fault, FaultContext } from "./faults.ts";
import { NftPartition } from "./nft_partition.ts";
import { RecordedWorkload } from "./recorded_workload.ts";
import { TmpfsDisk } from "./tmpfs_disk.ts";

/** Acknowledged writes a cycle waits for before the fault and after the repair. */
const WRITES_AROUND_FAULT = 3;
/**
 * Default of `RunFaultsOptions.recoveryMs`: how long a cycle waits for the cluster to
 * settle and take writes again, after a fault and before the next. A slow recovery on a
 * loaded machine is unavailability, counted as such; only a cluster that does not recover
 * in this long fails the run.
 */
export const RECOVERY_MS_DEFAULT = 4 * WAIT_MS;
/** Keys of the run's unique-key writer (the recorded clients use keys of their cycle). */
const WRITER_PREFIX = "acked/";
/** Size of each node's tmpfs in the disk profile: room for the run, little to fill. */
const DISK_BYTES = 48 * 1024 * 1024;

/** Release actions of everything set up and not yet released, for signal handlers. */
const pendingReleases = new Set<() => Promise<void>>();
/** `RunOutcome.error` of a run that a signal stopped (not a failure of the cluster). */
export const INTERRUPTED = "interrupted";
/** Set by `releaseOnSignal`: no run starts after it. */
let interrupted = false;

/**
 * Runs every pending release (children, nftables table, mounts), newest first, until none
 * is left (a run may register one meanwhile); no run starts afterwards. For signal
 * handlers, and for the end of `deno task chaos`.
 */
export async function releaseOnSignal(): Promise<void> {
  interrupted = true;
  // Bounded: each pass releases what was registered before it.
  for (let pass = 0; pass < 10 && pendingReleases.size > 0; pass++) {
    for (const release of [...pendingReleases].reverse()) {
      await release().catch((error) => console.error(`release failed: ${error}`));
    }
  }
}

/** Registers `release` for the signal handlers until the returned function runs it, once. */
function registered(release: () => Promise<void>): () => Promise<void> {
  let released = false;
  const once = async () => {
    if (released) return;
    released = true;
    pendingReleases.delete(once);
    await release();
  };
  pendingReleases.add(once);
  return once;
}

/** A fault and the figures its cycles add to. */
export interface FaultEntry {
  fault: Fault;
  figures: FaultFigures;
  /**
   * Cycles of this fault still wanted; each completed cycle takes one. Absent: no bound of
   * its own (`RunFaultsOptions.cycles` bounds the run).
   */
  cyclesLeft?: number;
}

/** Options of {@linkcode runFaults}. */
export interface RunFaultsOptions {
  /** Voters of the cluster. */
  size: number;
  /** Cycles to run at most, over all the faults. */
  cycles: number;
  /** `performance.now()` after which no new cycle starts. */
  deadlineMs: number;
  /** Recording clients. */
  clients: number;
  /** How long a cycle waits for the cluster to recover (default `RECOVERY_MS_DEFAULT`). */
  recoveryMs?: number;
  /** Called after each cycle (progress lines). */
  onCycle?: (figures: FaultFigures) => void;
}

/** What a run found beyond the per-cycle figures. */
export interface RunOutcome {
  /** Acknowledged writes of the run's writer not read back at the end, one line each. */
  lostAcknowledgedWrites: string[];
  /** Why the run stopped early (set up failed, a cycle failed, read-back failed), or `null`. */
  error: string | null;
}

/**
 * Forms a cluster, runs the faults' cycles on it in turn, reads back every acknowledged
 * write, and tears everything down, even when a step fails.
 */
export async function runFaults(
  entries: readonly FaultEntry[],
  options: RunFaultsOptions,
): Promise<RunOutcome> {
  if (entries.length === 0) throw new RangeError("runFaults() needs at least one fault");
  if (interrupted) return { lostAcknowledgedWrites: [], error: INTERRUPTED };
  for (const { figures } of entries) {
    figures.runs++;
    if (!figures.nodes.includes(options.size)) figures.nodes.push(options.size);
  }
  const needs = new Set(entries.map(({ fault }) => fault.needs));
  const releases: (() => Promise<void>)[] = [];
  const outcome: RunOutcome = { lostAcknowledgedWrites: [], error: null };
  try {
    const disks = new Map<number, TmpfsDisk>();
    if (needs.has("tmpfs")) {
      for (let id = 1; id <= options.size; id++) {
        const disk = await TmpfsDisk.mount(DISK_BYTES);
        disks.set(id, disk);
        releases.push(registered(() => disk.unmount()));
      }
    }
    let clusterSecret: ClusterSecret | null = null;
    const args: string[] = [];
    if (entries.some(({ fault }) => fault.clusterSecret === true)) {
      const secretDir = Deno.makeTempDirSync({ prefix: `blixard-chaos-secret-${Deno.pid}-` });
      releases.push(registered(() => Deno.remove(secretDir, { recursive: true })));
      args.push("--cluster-secret-file", writeSecretFile(secretDir, "secret", SECRET_TEXT));
      clusterSecret = await secretOf(SECRET_TEXT);
    }
    let partition: NftPartition | null = null;
    if (needs.has("nft")) {
      const opened = await NftPartition.open();
      partition = opened;
      releases.push(registered(() => opened.close()));
    }
    const cluster = await ChaosCluster.form(options.size, {
      ...(disks.size === 0 ? {} : { dataDirOf: (id: number) => `${disks.get(id)!.path}/node` }),
      args,
      recoveryMs: options.recoveryMs ?? RECOVERY_MS_DEFAULT,
      clusterSecret,
      // Children die before their disks are unmounted: releases run newest first.
      onCleanup: (cleanup) => releases.push(registered(cleanup)),
    });
    await runCycles(entries, { cluster, partition, disks, clusterSecret }, options, outcome);
  } catch (error) {
    outcome.error ??= interrupted ? INTERRUPTED : describe(error);
  } finally {
    for (const release of releases.reverse()) {
      await release().catch((error) => outcome.error ??= `release failed: ${describe(error)}`);
    }
  }
  return outcome;
}

async function runCycles(
  entries: readonly FaultEntry[],
  context: Omit<FaultContext, "cycle" | "figures">,
  options: RunFaultsOptions,
  outcome: RunOutcome,
): Promise<void> {
  const { cluster } = context;
  const members = cluster.members;
  const workload = await RecordedWorkload.start(
    options.clients,
    (index, attemptTimeoutMs) =>
      cluster.connect(members[index % members.length]!, { attemptTimeoutMs }),
  );
  const writerClient = await cluster.connect(members[0]!, { attemptTimeoutMs: 1_000 });
  let writer: Writer | null = startWriter(writerClient, {
    prefix: WRITER_PREFIX,
    timeoutMs: 5_000,
  });
  try {
    let turn = 0;
    for (let cycle = 0; cycle < options.cycles && performance.now() < options.deadlineMs; cycle++) {
      // The faults take turns, each until its own cycles are done.
      const wanted = entries.filter((entry) => (entry.cyclesLeft ?? 1) > 0);
      if (wanted.length === 0) break;
      const entry = wanted[turn++ % wanted.length]!;
      const { fault, figures } = entry;
      try {
        await runCycle(fault, { ...context, figures, cycle }, workload);
        if (entry.cyclesLeft !== undefined) entry.cyclesLeft--;
      } catch (error) {
        // A signal stopped the nodes under the cycle: that is the operator, not a failure.
        if (interrupted) {
          outcome.error = INTERRUPTED;
          return;
        }
        figures.errors++;
        outcome.error = `${fault.name}, ${options.size} nodes, cycle ${cycle}: ${describe(error)}`;
        addDetail(figures, outcome.error);
        // The cluster may be broken past repair; the next cycles would only repeat it.
        break;
      }
      options.onCycle?.(figures);
    }
    await writer.stop();
    const acknowledged = writer.acknowledged;
    writer = null;
    await workload.stop();
    await cluster.settle();
    const reader = await cluster.connect(cluster.live()[0]!);
    try {
      outcome.lostAcknowledgedWrites = await lostWrites(reader, acknowledged, {
        retryForMs: cluster.recoveryMs,
        prefix: WRITER_PREFIX,
      });
    } finally {
      await reader.close();
    }
  } finally {
    await writer?.stop();
    await workload.stop().catch(() => {});
    await writerClient.close();
  }
}

async function runCycle(fault: Fault, context: FaultContext, workload: RecordedWorkload) {
  const { figures, cluster } = context;
  const recoveryMs = cluster.recoveryMs;
  if (!await workload.waitForWrites(WRITES_AROUND_FAULT, recoveryMs)) {
    throw new Error(
      `fewer than ${WRITES_AROUND_FAULT} writes in ${recoveryMs} ms before the fault`,
    );
  }
  const faultAtMs = performance.now();
  await fault.inject(context);
  // Waits by condition, up to the recovery deadline: however slow, it is unavailability.
  await cluster.settle();
  if (!await workload.waitForWrites(WRITES_AROUND_FAULT, recoveryMs)) {
    throw new Error(
      `fewer than ${WRITES_AROUND_FAULT} writes in ${recoveryMs} ms after the cluster settled`,
    );
  }
  const endAtMs = performance.now();
  const record = await workload.endCycle();
  figures.cycles++;
  figures.ok += record.counts.ok;
  figures.fail += record.counts.fail;
  figures.unknown += record.counts.unknown;
  figures.unavailabilityMs.push(longestGapMs(record.writeAcks, faultAtMs, endAtMs));
  const result = checkLinearizability(record.history);
  figures.operationsChecked += result.operationsChecked;
  if (result.type === "notLinearizable") {
    figures.violations++;
    addDetail(
      figures,
      `${fault.name}, cycle ${context.cycle}: not linearizable:\n${result.explanation}`,
    );
  } else if (result.type === "unknown") {
    figures.undecided++;
    addDetail(figures, `${fault.name}, cycle ${context.cycle}: undecided: ${result.reason}`);
  }
}

function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text;
}
