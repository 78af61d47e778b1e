/**
 * `RaftNode`: the pure `RaftCore` driven by real time, durable storage and the network.
 *
 * The Ready loop is `ReadyDriver` (`ready_driver.ts`, see `docs/architecture.md`), the same
 * code the simulator runs: early send of a leader's replication, persist and apply in one
 * SQLite transaction that syncs only when the Ready must, then the other messages. This
 * class adds what a client of the node needs around it: the tick timer, proposals and
 * linearizable reads answered once applied, role changes, and log compaction.
 *
 * Snapshots are not images built at compaction: the state tables are the durable image,
 * so a compaction only records the position and drops log rows, a bounded number per
 * Ready pass. When the core asks for an `InstallSnapshot`, a `SnapshotTransport` (the
 * node's streams the state in chunks, `src/snapshot/`) sends the state as it is applied
 * now; without one, the image is built whole and sent in the message (in-process tests).
 *
 * A full disk stops the node's Raft work without stopping the process: the Ready whose
 * persist failed is held by the driver, the core is neither ticked nor stepped, clients
 * are refused with `disk_full`, and the persist is tried again with a growing pause until
 * it succeeds (see `docs/decisions.md`).
 *
 * @module
 */

import { RaftCore, type RaftStatus } from "../../raft/raft_core.ts";
import type {
  Entry,
  InstallSnapshot,
  MembershipChange,
  Message,
  NodeId,
  ProposeResult,
  Snapshot,
  SnapshotMetadata,
  SoftState,
} from "../../raft/types.ts";
import { NO_NODE } from "../../raft/types.ts";
import type { ApplyResult } from "../../state_machine/apply_result.ts";
import type { KvStateMachine } from "../../state_machine/kv_state_machine.ts";
import type { SqliteStorage } from "../../storage/sqlite_storage.ts";
import { isDiskFullError } from "../../storage/storage.ts";
import { getLogger } from "../../log/logging.ts";
import { assert } from "../../util/assert.ts";
import { ClusterError } from "./cluster_error.ts";
import { ReadyDriver } from "./ready_driver.ts";
import { backoffMs } from "../../util/backoff.ts";
import { PeerActivity, ProposalTracker, rejection, withDeadline } from "./proposal_tracker.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../../util/scheduler.ts";

const log = getLogger(["blixard", "raft"]);

/** How time maps onto the core's ticks. */
export interface RaftTiming {
  /** Milliseconds per tick. */
  tickMs: number;
  /** Election timeout in ticks, randomized in [electionTicks, 2 × electionTicks). */
  electionTicks: number;
  /** Heartbeat interval in ticks. */
  heartbeatTicks: number;
}

/**
 * Defaults chosen from measurement on loopback (see `docs/decisions.md`): a 300–600 ms
 * election timeout and 60 ms heartbeats fail over well under a second while leaving a
 * node five heartbeats of slack before a follower suspects its leader.
 */
export const DEFAULT_RAFT_TIMING: RaftTiming = { tickMs: 20, electionTicks: 15, heartbeatTicks: 3 };

/**
 * Entries applied since the last snapshot before the log is compacted. A snapshot is the
 * whole state-machine image, built synchronously: measured here about 100 ms for a 2.3 MiB
 * state plus up to 300 ms to delete the compacted rows, a pause the node's clients see. So
 * it is rare, like etcd's default of 100,000 entries; the log it keeps is a few tens of MiB.
 */
export const SNAPSHOT_INTERVAL_ENTRIES = 65_536;
/** A leader compacts even past lagging followers once the log is this many times the interval. */
const SNAPSHOT_FORCE_FACTOR = 4;
/**
 * Log rows a compaction deletes per Ready pass: deleting 64,000 rows at once took up to
 * 300 ms here, a pause every client saw; 4,096 take a few milliseconds.
 */
export const COMPACTION_STEP_ENTRIES = 4_096;
/** Largest AppendEntries payload. */
const MESSAGE_BYTES_MAX = 1024 * 1024;
/** Uncommitted bytes a leader accepts before refusing proposals. */
const UNCOMMITTED_BYTES_MAX = 64 * 1024 * 1024;
/** AppendEntries in flight per follower. */
const INFLIGHT_MESSAGES_MAX = 256;
/**
 * Ticks before a failed persist is tried again, doubling up to the max: 100 ms, then at
 * most 1 s with the default timing. Each try is one small SQLite transaction.
 */
const PERSIST_RETRY_TICKS_MIN = 5;
const PERSIST_RETRY_TICKS_MAX = 50;

/** Options of a {@linkcode RaftNode}. */
export interface RaftNodeOptions {
  nodeId: NodeId;
  storage: SqliteStorage;
  stateMachine: KvStateMachine;
  /** Sends messages to peers; called after they are safe to send. */
  send: (messages: Message[]) => void;
  timing?: RaftTiming;
  /** Uniform in [0, 1). */
  random?: () => number;
  /** Entries applied past the snapshot before the log is compacted; tests lower it. */
  snapshotIntervalEntries?: number;
  /** The clock that ticks the core and defers Ready runs; `SYSTEM_SCHEDULER` unless a test injects its own. */
  scheduler?: Scheduler;
}

/**
 * Sends snapshots for the node (`src/snapshot/`). The core's `InstallSnapshot` says that a
 * follower needs the state; the transport sends the state as applied now, and reports the
 * outcome with `RaftNode.reportSnapshot`.
 */
export interface SnapshotTransport {
  /** Sends the applied state to `message.to`, then calls `reportSnapshot` (ok or not). */
  send(message: InstallSnapshot): void;
  /**
   * Installs `snapshot` into the state machine inside the Ready's transaction when its
   * data is the transport's own (a staged image); `false` leaves it to the state machine.
   */
  install(snapshot: Snapshot): boolean;
}

/** What happened in one pass, for observers (membership, metrics). */
export interface RaftNodeEvents {
  /** Entries about to be made durable (before they are applied, possibly before they commit). */
  appended?: (entries: readonly Entry[]) => void;
  /** A batch of Ready passes finished (replication progress may have changed). */
  afterReady?: () => void;
  /**
   * A peer's answer to this node's replication (`AppendEntriesResponse`, `HeartbeatResponse`)
   * was stepped. It can change what the core knows of the peer (caught up, heard from
   * recently) and leave it nothing to send or persist, so that no Ready, and no
   * `afterReady`, follows.
   */
  answered?: (from: NodeId) => void;
  /** Each applied entry with its result, in order. */
  applied?: (entry: Entry, result: ApplyResult) => void;
  /** The role or the leader changed. */
  softState?: (softState: SoftState) => void;
}

/** While the disk is full: since when, and when the persist is tried again. */
interface DiskFull {
  sinceMs: number;
  /** The persist's first error, for messages. */
  message: string;
  /** Ticks left before the next try. */
  retryInTicks: number;
  /** Tries so far; the pause grows with them (`backoffMs`, counted in ticks). */
  retries: number;
}

interface PendingRead {
  /** Set when the ReadIndex round completed. */
  index: number | null;
  run: () => void;
  reject: (error: Error) => void;
}

/** A Raft member: core + storage + state machine + the network, driven by a timer. */
export class RaftNode {
  readonly nodeId: NodeId;
  readonly #core: RaftCore;
  readonly #driver: ReadyDriver<ApplyResult>;
  readonly #storage: SqliteStorage;
  readonly #stateMachine: KvStateMachine;
  readonly #timing: RaftTiming;
  readonly #scheduler: Scheduler;
  readonly #snapshotIntervalEntries: number;
  readonly #proposals = new ProposalTracker();
  readonly #reads = new Map<number, PendingRead>();
  readonly #listeners: RaftNodeEvents[] = [];
  /** When each peer was last heard from (`scheduler.now()`), for `activePeers()`. */
  readonly #peers: PeerActivity;
  #nextReadId = 1;
  #stopTicking: (() => void) | null = null;
  #stopped = false;
  #softState: SoftState = { role: "follower", leaderId: NO_NODE };
  #snapshots: SnapshotTransport | null = null;
  /** Where the running compaction ends; it moves `COMPACTION_STEP_ENTRIES` per pass. */
  #compactionTarget = 0;
  #diskFull: DiskFull | null = null;
  /** Counters for metrics. */
  readonly counters = {
    leaderChanges: 0,
    proposals: 0,
    proposalsFailed: 0,
    readyPasses: 0,
    /** Times the disk was found full (a held persist, until it succeeded again). */
    diskFullEpisodes: 0,
  };

  /** A node over `options.storage`, whose state machine is at its own applied index. */
  constructor(options: RaftNodeOptions) {
    this.nodeId = options.nodeId;
    this.#storage = options.storage;
    this.#stateMachine = options.stateMachine;
    this.#timing = options.timing ?? DEFAULT_RAFT_TIMING;
    this.#peers = new PeerActivity(this.#timing.tickMs * this.#timing.electionTicks);
    this.#scheduler = options.scheduler ?? SYSTEM_SCHEDULER;
    this.#snapshotIntervalEntries = options.snapshotIntervalEntries ?? SNAPSHOT_INTERVAL_ENTRIES;
    assert(
      Number.isSafeInteger(this.#snapshotIntervalEntries) && this.#snapshotIntervalEntries >= 1,
      "snapshotIntervalEntries >= 1",
    );
    this.#core = new RaftCore({
      id: options.nodeId,
      storage: options.storage,
      applied: options.stateMachine.appliedIndex(),
      electionTicks: this.#timing.electionTicks,
      heartbeatTicks: this.#timing.heartbeatTicks,
      maxInflightMessages: INFLIGHT_MESSAGES_MAX,
      maxMessageBytes: MESSAGE_BYTES_MAX,
      maxUncommittedBytes: UNCOMMITTED_BYTES_MAX,
      preVote: true,
      checkQuorum: true,
      random: options.random ?? Math.random,
    });
    const stateMachine = options.stateMachine;
    this.#driver = new ReadyDriver<ApplyResult>({
      core: this.#core,
      storage: options.storage,
      stateMachine: {
        restore: (snapshot) => {
          if (this.#snapshots?.install(snapshot) !== true) stateMachine.restore(snapshot);
        },
        applyAll: (entries) => stateMachine.applyAll(entries),
      },
      send: (messages) => this.#send(messages, options.send),
      scheduler: this.#scheduler,
      persistRetryable: isDiskFullError,
      events: {
        persistFailed: (error) => this.#persistFailed(error),
        persistRecovered: () => this.#persistRecovered(),
        appended: (entries) => {
          for (const listener of this.#listeners) listener.appended?.(entries);
        },
        softState: (softState) => this.#roleChanged(softState),
        applied: (entry, result) => {
          this.#proposals.answer(entry, result);
          for (const listener of this.#listeners) listener.applied?.(entry, result);
        },
        installed: (snapshot) => this.#proposals.failThrough(snapshot.metadata.index),
        readStates: (readStates) => {
          for (const readState of readStates) {
            const read = this.#reads.get(readState.requestId);
            if (read !== undefined) read.index = readState.index;
          }
        },
        advanced: () => {
          this.counters.readyPasses++;
          this.#runReadyReads();
          this.#maybeCompact();
        },
        settled: () => {
          for (const listener of this.#listeners) listener.afterReady?.();
        },
      },
    });
  }

  /** Starts ticking. A sole voter campaigns at once instead of waiting for a timeout. */
  start(): void {
    this.#stopTicking = this.#scheduler.every(this.#timing.tickMs, () => {
      if (this.#diskFull !== null) {
        this.#retryPersist(this.#diskFull);
        return;
      }
      this.#core.tick();
      this.#scheduleReady();
    });
    const { voters } = this.#core.status().confState;
    if (voters.length === 1 && voters[0] === this.nodeId) this.#core.campaign();
    this.#scheduleReady();
  }

  /** Stops ticking and fails every waiting request with `stopping`. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#driver.stop();
    this.#stopTicking?.();
    const error = new ClusterError("stopping", "the node is stopping");
    this.#proposals.failAll(error);
    for (const read of this.#reads.values()) read.reject(error);
    this.#reads.clear();
  }

  /** Sends and installs snapshots through `transport` from now on (the node's streams). */
  useSnapshotTransport(transport: SnapshotTransport): void {
    this.#snapshots = transport;
  }

  /** A snapshot sent to `nodeId` was received whole (`ok`) or the transfer gave up. */
  reportSnapshot(nodeId: NodeId, ok: boolean): void {
    if (this.#stopped) return;
    this.#core.reportSnapshot(nodeId, ok);
    this.#scheduleReady();
  }

  /** Registers observers of applied entries and role changes. */
  on(events: RaftNodeEvents): void {
    this.#listeners.push(events);
  }

  /** Hands a peer's message to the core. */
  step(message: Message): void {
    // While the disk is full the core waits for its held Ready: the message is lost, as if
    // this process were paused, and the sender's Raft sends again.
    if (this.#stopped || this.#diskFull !== null) return;
    this.#peers.heard(message.from, this.#scheduler.now());
    this.#core.step(message);
    this.#scheduleReady();
    if (message.type === "AppendEntriesResponse" || message.type === "HeartbeatResponse") {
      for (const listener of this.#listeners) listener.answered?.(message.from);
    }
  }

  /** The transport could not deliver to `nodeId`. */
  reportUnreachable(nodeId: NodeId): void {
    if (this.#stopped || this.#diskFull !== null) return;
    this.#core.reportUnreachable(nodeId);
  }

  /** `nodeId` opened a new connection to this node: a leader probes it now (`RaftCore`). */
  reportReachable(nodeId: NodeId): void {
    if (this.#stopped || this.#diskFull !== null) return;
    this.#core.reportReachable(nodeId);
    this.#scheduleReady();
  }

  /** The core's state. */
  status(): RaftStatus {
    return this.#core.status();
  }

  /** The peers heard from within the last election timeout (see `PeerActivity`). */
  activePeers(): Set<NodeId> {
    return this.#peers.active(this.#scheduler.now());
  }

  /** The current role and leader. */
  get softState(): SoftState {
    return this.#softState;
  }

  /**
   * While the disk is full: since when (`scheduler.now()`) and the persist's first error;
   * `null` while it has room (for `/health`, `/status` and the metrics).
   */
  get diskFull(): { sinceMs: number; message: string } | null {
    const diskFull = this.#diskFull;
    return diskFull === null ? null : { sinceMs: diskFull.sinceMs, message: diskFull.message };
  }

  /**
   * Proposes a command (leader only) and resolves with its result once applied here.
   * Rejects with `ClusterError`: `not_leader`/`no_leader` at once, `dropped` when leadership
   * changed before it committed, `timeout` when `signal` aborts (outcome unknown),
   * `disk_full` at once while this node's disk is full (no effect).
   */
  propose(data: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<ApplyResult> {
    const refused = this.#refusal();
    if (refused !== null) return Promise.reject(refused);
    return this.#track(this.#core.propose(data), options.signal);
  }

  /** Proposes a membership change; resolves once applied here. Same errors as `propose`. */
  proposeMembership(
    change: MembershipChange,
    options: { signal?: AbortSignal } = {},
  ): Promise<ApplyResult> {
    const refused = this.#refusal();
    if (refused !== null) return Promise.reject(refused);
    return this.#track(this.#core.proposeMembership(change), options.signal);
  }

  /**
   * Runs `read` against the local state machine once it is linearizable (Raft thesis §6.4:
   * the ReadIndex round confirmed leadership and the state machine caught up with it). On
   * a follower the round goes through the leader. Rejects with `ClusterError`.
   */
  read<T>(read: () => T, options: { signal?: AbortSignal } = {}): Promise<T> {
    const refused = this.#refusal();
    if (refused !== null) return Promise.reject(refused);
    const requestId = this.#nextReadId++;
    const accepted = this.#core.readIndex(requestId);
    if (!accepted.ok) return Promise.reject(rejection(accepted.reason));
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    // A failing read rejects its caller; it must never escape into the Ready loop.
    const run = () => {
      try {
        resolve(read());
      } catch (error) {
        reject(error);
      }
    };
    this.#reads.set(requestId, { index: null, run, reject });
    this.#scheduleReady();
    return withDeadline(promise, options.signal, () => {
      this.#reads.delete(requestId);
      return new ClusterError(
        "timeout",
        "the read did not complete in time: no quorum confirmed the leader",
      );
    });
  }

  /** Asks the leader (this node) to hand leadership to `to`. */
  transferLeadership(to: NodeId): void {
    const refused = this.#refusal();
    if (refused !== null) throw refused;
    const result = this.#core.transferLeadership(to);
    if (!result.ok) throw rejection(result.reason);
    this.#scheduleReady();
  }

  /** Starts an election now (used when a leader must step down for a transfer target). */
  campaign(): void {
    const refused = this.#refusal();
    if (refused !== null) throw refused;
    this.#core.campaign();
    this.#scheduleReady();
  }

  #track(result: ProposeResult, signal: AbortSignal | undefined): Promise<ApplyResult> {
    if (this.#stopped) return Promise.reject(new ClusterError("stopping", "the node is stopping"));
    this.counters.proposals++;
    if (!result.ok) this.counters.proposalsFailed++;
    const outcome = this.#proposals.track(result, signal);
    if (result.ok) this.#scheduleReady();
    return outcome;
  }

  /** Hands messages to the network, and each `InstallSnapshot` to the snapshot transport. */
  #send(messages: Message[], send: (messages: Message[]) => void): void {
    if (!messages.some((message) => message.type === "InstallSnapshot")) return send(messages);
    const others: Message[] = [];
    for (const message of messages) {
      if (message.type !== "InstallSnapshot") others.push(message);
      else if (this.#snapshots !== null) this.#snapshots.send(message);
      else others.push({ ...message, snapshot: this.#wholeSnapshot() });
    }
    if (others.length > 0) send(others);
  }

  /**
   * The applied state as one image (no snapshot transport: in-process tests). Built when
   * it is sent, not at compaction; it is at least as new as the core's snapshot.
   */
  #wholeSnapshot(): Snapshot {
    return { metadata: this.#appliedSnapshotMetadata(), data: this.#stateMachine.snapshotData() };
  }

  /** The position of the applied state: its index, that entry's term, the configuration. */
  #appliedSnapshotMetadata(): SnapshotMetadata {
    const index = this.#stateMachine.appliedIndex();
    const term = this.#storage.term(index);
    assert(term !== null, "the applied entry is in the log or is the snapshot's");
    return { index, term, confState: this.#stateMachine.appliedConfState() };
  }

  #scheduleReady(): void {
    if (!this.#stopped && this.#diskFull === null) this.#driver.schedule();
  }

  /** Why a request cannot reach the core now, or `null` when it can. */
  #refusal(): ClusterError | null {
    if (this.#stopped) return new ClusterError("stopping", "the node is stopping");
    if (this.#diskFull === null) return null;
    return new ClusterError(
      "disk_full",
      `disk full on node ${this.nodeId} (${this.#diskFull.message}): it refuses requests ` +
        `until space is freed in its data dir; another member can serve them`,
      { leaderId: this.#softState.leaderId === NO_NODE ? null : this.#softState.leaderId },
    );
  }

  #persistFailed(error: unknown): void {
    if (this.#diskFull !== null) return;
    const message = error instanceof Error ? error.message : String(error);
    this.counters.diskFullEpisodes++;
    this.#diskFull = {
      sinceMs: this.#scheduler.now(),
      message,
      retryInTicks: PERSIST_RETRY_TICKS_MIN,
      retries: 0,
    };
    log.error(
      "the disk of {path} is full ({message}): this node refuses requests and holds its Raft " +
        "state until space is freed there, then goes on by itself (no restart needed)",
      { path: this.#storage.path, message },
    );
  }

  #persistRecovered(): void {
    const since = this.#diskFull?.sinceMs ?? this.#scheduler.now();
    this.#diskFull = null;
    log.info("the disk of {path} has room again after {seconds} s: the node goes on", {
      path: this.#storage.path,
      seconds: Math.round((this.#scheduler.now() - since) / 100) / 10,
    });
  }

  /** Counts a tick down to the next try of the held persist, with a doubling pause. */
  #retryPersist(diskFull: DiskFull): void {
    if (--diskFull.retryInTicks > 0) return;
    diskFull.retries++;
    diskFull.retryInTicks = backoffMs(diskFull.retries, {
      initialMs: PERSIST_RETRY_TICKS_MIN,
      maxMs: PERSIST_RETRY_TICKS_MAX,
    });
    this.#driver.schedule();
  }

  #roleChanged(softState: SoftState): void {
    if (softState.leaderId !== this.#softState.leaderId) this.counters.leaderChanges++;
    const wasLeader = this.#softState.role === "leader";
    this.#softState = softState;
    log.info("role {role}, leader {leaderId}, term {term}", {
      role: softState.role,
      leaderId: softState.leaderId,
      term: this.#core.status().term,
    });
    if (wasLeader && softState.role !== "leader") this.#failReadsOnLostLeadership();
    for (const listener of this.#listeners) listener.softState?.(softState);
  }

  #failReadsOnLostLeadership(): void {
    for (const [requestId, read] of this.#reads) {
      if (read.index !== null) continue;
      this.#reads.delete(requestId);
      read.reject(
        new ClusterError("no_leader", "leadership was lost before the read was confirmed"),
      );
    }
  }

  #runReadyReads(): void {
    const applied = this.#stateMachine.appliedIndex();
    for (const [requestId, read] of this.#reads) {
      if (read.index === null || read.index > applied) continue;
      this.#reads.delete(requestId);
      read.run();
    }
  }

  /**
   * Compacts the log once `snapshotIntervalEntries` are applied past the snapshot. A
   * leader waits while an active follower still needs the entries (so it is not forced
   * into a snapshot transfer for a small lag), up to `SNAPSHOT_FORCE_FACTOR` intervals.
   * A compaction records a position and deletes rows, at most `COMPACTION_STEP_ENTRIES`
   * per Ready pass, so that no pass pauses the node; it builds no image (the state tables
   * are the image, `SnapshotTransport`).
   */
  #maybeCompact(): void {
    const snapshotIndex = this.#storage.firstIndex() - 1;
    if (this.#compactionTarget <= snapshotIndex) this.#compactionTarget = this.#compactionDue();
    if (this.#compactionTarget <= snapshotIndex) return;
    const index = Math.min(this.#compactionTarget, snapshotIndex + COMPACTION_STEP_ENTRIES);
    const term = this.#storage.term(index);
    if (term === null) return;
    const confState = this.#storage.confStateAt(index);
    try {
      this.#storage.compact({ metadata: { index, term, confState }, data: new Uint8Array() });
    } catch (error) {
      // Rolled back; the log stays whole and a later Ready tries again.
      if (!isDiskFullError(error)) throw error;
      log.warn("no room to compact the log: {message}", { message: String(error) });
      return;
    }
    if (index === this.#compactionTarget) {
      log.info("compacted the log through index {index}", { index });
    }
  }

  /** The index to compact through now, or 0 when it is not time. */
  #compactionDue(): number {
    const applied = this.#stateMachine.appliedIndex();
    const logEntries = applied - (this.#storage.firstIndex() - 1);
    const interval = this.#snapshotIntervalEntries;
    if (logEntries < interval) return 0;
    const status = this.#core.status();
    const lagging = status.progress.some((peer) =>
      peer.nodeId !== this.nodeId && peer.recentActive && peer.matchIndex < applied
    );
    if (lagging && logEntries < interval * SNAPSHOT_FORCE_FACTOR) return 0;
    return applied;
  }
}
