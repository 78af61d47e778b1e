/**
 * `SimCluster`: simulated nodes on a simulated network under one simulated clock. Each
 * unit of time: due timers of the nodes' policies fire (`SimClock`), nodes whose turn it is
 * tick, due messages are delivered, the actors of the
 * simulation act (clients, operator, faults), then every node's Ready is handled until
 * none is left, and the safety properties are checked.
 *
 * Nodes crash and restart here: a crash keeps only what the node's storage durably holds;
 * a crash can be armed to strike at a chosen point of the Ready loop.
 *
 * @module
 */

import type { CrashPoint } from "../../src/node/replication/ready_driver.ts";
import type {
  Entry,
  InstallSnapshot,
  Message,
  NodeId,
  ReadState,
  Ready,
  Snapshot,
} from "../../src/raft/types.ts";
import type { ApplyResult } from "../../src/state_machine/apply_result.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import { PromiseChecker } from "./promise_checker.ts";
import { hex, SafetyChecker } from "./safety_checker.ts";
import { type NetworkFaults, SimNetwork } from "./sim_network.ts";
import { type RaftTuning, SimNode } from "./sim_node.ts";
import type { SimRandom } from "./sim_random.ts";
import type { Trace } from "./trace.ts";
import { MS_PER_UNIT, SimClock } from "./sim_clock.ts";
import type { PromotionPolicy } from "../../src/node/membership/autopilot.ts";
import { SimRpc } from "./sim_rpc.ts";

/**
 * Told about what nodes apply and read, so that clients and the operator can react; asked
 * whether a machine's join runs (the operator runs the joiners).
 */
export interface ClusterListener {
  applied(nodeId: NodeId, entry: Entry, result: ApplyResult): void;
  readStates(nodeId: NodeId, readStates: readonly ReadState[]): void;
  joining(nodeId: NodeId): boolean;
}

/** How a cluster is set up. */
export interface SimClusterOptions {
  random: SimRandom;
  trace: Trace;
  tuning: RaftTuning;
  networkFaults: NetworkFaults;
  /** Simulated time units between two ticks of one node. */
  tickInterval: number;
  inFlightMax: number;
  listener: ClusterListener;
  /** The autopilot's voter cap on every node. */
  policy: PromotionPolicy;
  /**
   * Test-only sabotage: a restarted node loses the last few entries it persisted and its
   * vote, as on a disk that acknowledged writes it never synced. Raft cannot be safe on
   * such a disk, so runs with it show that the checks catch what follows.
   */
  amnesia?: boolean;
  /** Test-only sabotage: a granted vote leaves before it is durable (see `SimWiring`). */
  earlyVotes?: boolean;
}

interface NodeSlot {
  id: NodeId;
  /** What survives a crash. */
  storage: MemoryStorage;
  /** `null` while crashed or after removal. */
  node: SimNode | null;
  /** Nodes tick at different phases of the tick interval, as real clocks are not aligned. */
  tickPhase: number;
  /** A crash armed to strike at this point of the next Ready. */
  crashPoint: CrashPoint | null;
  destroyed: boolean;
  /** The node's storage has been checked against the committed entries up to here. */
  checkedCommit: number;
  /** The node's term as of its last persisted hard state. */
  term: number;
}

/**
 * A snapshot travels as chunks of this many bytes of its image, one chunk per unit of time,
 * as the node streams one (`src/snapshot/`): a crash of either end, or a cut link, between
 * two chunks breaks the transfer, and the receiver never sees any of it.
 */
const SNAPSHOT_CHUNK_BYTES = 16;
/** At most this many chunks per snapshot, so that a transfer outlasts no election timeout. */
const SNAPSHOT_CHUNKS_MAX = 40;

/** A snapshot on its way, chunk by chunk, between two incarnations of its nodes. */
interface SnapshotTransfer {
  message: InstallSnapshot;
  sender: SimNode;
  receiver: SimNode;
  chunksLeft: number;
}

/** Ready rounds per unit of time before the loop is declared stuck (it must settle). */
const READY_ROUNDS_MAX = 1000;

/** The simulated cluster. */
export class SimCluster {
  /** Simulated time. */
  now = 0;
  readonly network: SimNetwork<Message>;
  readonly checker = new SafetyChecker();
  readonly promises = new PromiseChecker();
  /** The production `Scheduler` on simulated time, for the nodes' policies and the actors. */
  readonly clock: SimClock = new SimClock(() => this.now);
  /** `blixard/rpc/1` between the nodes (and from the operator), over `network`'s links. */
  readonly rpc: SimRpc;
  /** Snapshots nodes installed from their leader. */
  snapshotsInstalled = 0;
  /** Snapshot transfers broken between two chunks (a crash or a cut link). */
  snapshotTransfersBroken = 0;
  /** Raft messages a node's transport refused: their sender was no member in its view. */
  raftMessagesRefused = 0;
  /** Removed nodes that stopped, by how they found out. */
  readonly removedNodes = { applied: 0, watch: 0, left: 0 };
  readonly #transfers: SnapshotTransfer[] = [];
  readonly #options: SimClusterOptions;
  readonly #slots = new Map<NodeId, NodeSlot>();
  /** Transport reports (snapshot sent, peer unreachable) delivered after the current Ready. */
  #reports: (() => void)[] = [];
  /** Work the drivers scheduled (`setImmediate` in production), run before the unit ends. */
  #soon: (() => void)[] = [];

  constructor(options: SimClusterOptions) {
    this.#options = options;
    this.network = new SimNetwork(options.random, {
      faults: options.networkFaults,
      inFlightMax: options.inFlightMax,
    });
    this.rpc = new SimRpc({
      links: this.network,
      random: options.random,
      scheduler: this.clock.scope(),
    });
  }

  /** Starts node `id` from `storage` (a founder's log, or empty for a node about to join). */
  addNode(id: NodeId, storage: MemoryStorage): void {
    if (this.#slots.has(id)) throw new Error(`SimCluster.addNode: node ${id} exists already`);
    const slot: NodeSlot = {
      id,
      storage,
      node: null,
      tickPhase: this.#options.random.integer(0, this.#options.tickInterval - 1),
      crashPoint: null,
      destroyed: false,
      checkedCommit: storage.initialState().hardState.commit,
      term: storage.initialState().hardState.term,
    };
    this.#slots.set(id, slot);
    this.#observeInitialLog(slot);
    this.#boot(slot, false);
  }

  /** The running node `id`, or `undefined` when it is crashed, removed or unknown. */
  live(id: NodeId): SimNode | undefined {
    return this.#slots.get(id)?.node ?? undefined;
  }

  /** Every running node, by id. */
  liveNodes(): SimNode[] {
    return [...this.#slots.values()].flatMap((slot) => (slot.node === null ? [] : [slot.node]));
  }

  /** Nodes that are down but not removed: they may be restarted. */
  crashedIds(): NodeId[] {
    return [...this.#slots.values()].filter((slot) => slot.node === null && !slot.destroyed).map((
      slot,
    ) => slot.id);
  }

  /** Every node that exists and was not removed (running or crashed), by id. */
  existingIds(): NodeId[] {
    return [...this.#slots.values()].filter((slot) => !slot.destroyed).map((slot) => slot.id);
  }

  /** True when node `id` exists and was not removed (running or crashed). */
  exists(id: NodeId): boolean {
    const slot = this.#slots.get(id);
    return slot !== undefined && !slot.destroyed;
  }

  /** The running leader with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.liveNodes()) {
      const status = node.core.status();
      if (status.role === "leader" && status.term > bestTerm) {
        best = node;
        bestTerm = status.term;
      }
    }
    return best;
  }

  /** Crashes node `id` now, or arms a crash at `point` of its next Ready. */
  crash(id: NodeId, point: CrashPoint | "now"): void {
    const slot = this.#slot(id);
    if (slot.node === null) return;
    if (point !== "now") {
      slot.crashPoint = point;
      this.trace(`node ${id}: crash armed ${point}`);
      return;
    }
    this.#kill(slot, "crashed");
  }

  /** Cancels every armed crash. */
  disarmCrashes(): void {
    for (const slot of this.#slots.values()) slot.crashPoint = null;
  }

  /** Restarts crashed node `id` from its durable state. */
  restart(id: NodeId): void {
    const slot = this.#slot(id);
    if (slot.node !== null || slot.destroyed) return;
    const image = slot.storage.durableImage();
    if (this.#options.amnesia === true) {
      const kept = Math.max(0, image.entries.length - this.#options.random.integer(1, 3));
      image.entries = image.entries.slice(0, kept);
      const lastIndex = image.snapshot.metadata.index + kept;
      image.hardState = {
        term: image.hardState.term,
        vote: 0,
        commit: Math.min(image.hardState.commit, lastIndex),
      };
    }
    this.promises.checkRestart(id, image);
    slot.storage = MemoryStorage.fromDurableImage(image);
    this.#boot(slot, true);
    this.trace(
      `node ${id}: restarted (snapshot ${slot.storage.snapshot().metadata.index}, last ${slot.storage.lastIndex()})`,
    );
  }

  /** Stops node `id` for good (it was removed, or never became a member); `why` goes to the trace. */
  destroy(id: NodeId, why: string): void {
    const slot = this.#slot(id);
    if (slot.destroyed) return;
    if (slot.node !== null) this.#kill(slot, `stopped: ${why}`);
    slot.destroyed = true;
  }

  /**
   * Compacts node `id`'s log up to its applied index when at least `entriesMin` entries
   * would go, with the state machine's image as the snapshot. Returns whether it compacted.
   */
  compact(id: NodeId, entriesMin: number): boolean {
    const node = this.live(id);
    if (node === undefined) return false;
    const applied = node.stateMachine.appliedIndex();
    if (applied - (node.storage.firstIndex() - 1) < entriesMin) return false;
    const term = node.storage.term(applied);
    if (term === null) {
      throw new Error(`node ${id}: applied index ${applied} has no term in storage`);
    }
    const snapshot: Snapshot = {
      metadata: { index: applied, term, confState: node.stateMachine.appliedConfState() },
      data: node.stateMachine.snapshotData(),
    };
    node.storage.compact(snapshot);
    this.checker.observeSnapshot(id, snapshot.metadata);
    this.checker.observeStateImage(id, applied, digest(snapshot.data));
    this.trace(`node ${id}: compacted to ${applied}`);
    return true;
  }

  /** Starts a unit of time: ticks, then deliveries. */
  beginStep(): void {
    this.now += 1;
    this.clock.runDue();
    for (const slot of this.#slots.values()) {
      if (slot.node !== null && this.now % this.#options.tickInterval === slot.tickPhase) {
        slot.node.core.tick();
        slot.node.driver.schedule();
      }
    }
    this.#moveSnapshotChunks();
    for (
      let message = this.network.deliverNext(this.now);
      message !== undefined;
      message = this.network.deliverNext(this.now)
    ) {
      const node = this.live(message.to);
      if (node === undefined) continue;
      if (!node.acceptsRaftFrom(message.from)) {
        // As `RaftTransport` closes a connection from a key that is no member's (removed,
        // revoked, or not known yet): the message is lost and its sender finds the peer
        // unreachable.
        this.raftMessagesRefused += 1;
        const sender = this.live(message.from);
        if (sender !== undefined) this.#reports.push(() => sender.core.reportUnreachable(node.id));
        continue;
      }
      if (message.type !== "Heartbeat" && message.type !== "HeartbeatResponse") {
        this.trace(describeMessage(message));
      }
      node.raft.heard(message.from);
      node.core.step(message);
      node.driver.schedule();
    }
  }

  /**
   * Ends a unit of time: runs the drivers' scheduled work until none is left, then checks
   * the leaders. Clients and the operator reach the cores directly; a node whose core has
   * work is scheduled here for them, as the node schedules after a proposal or a read.
   */
  endStep(): void {
    for (let round = 0;; round++) {
      if (round >= READY_ROUNDS_MAX) {
        throw new Error(`the Ready loop did not settle in ${READY_ROUNDS_MAX} rounds`);
      }
      for (const node of this.liveNodes()) {
        if (node.core.hasReady()) node.driver.schedule();
      }
      const work = this.#soon;
      this.#soon = [];
      for (const run of work) run();
      const reports = this.#reports;
      this.#reports = [];
      for (const report of reports) report();
      if (work.length === 0 && reports.length === 0) break;
    }
    this.#checkLeaders();
  }

  /** Records an event in the trace at the current time. */
  trace(text: string): void {
    this.#options.trace.record(this.now, text);
  }

  #slot(id: NodeId): NodeSlot {
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new Error(`SimCluster: no node ${id}`);
    return slot;
  }

  #boot(slot: NodeSlot, restarted: boolean): void {
    const random = this.#options.random;
    let node: SimNode | null = null;
    node = SimNode.start(slot.id, slot.storage, {
      tuning: this.#options.tuning,
      random: () => random.float(),
      send: (messages) => {
        for (const message of messages) this.#send(node!, message);
      },
      soon: (run) => this.#soon.push(run),
      events: {
        persisted: (ready) => this.#checkPersisted(slot, ready),
        installed: (snapshot) => {
          this.snapshotsInstalled += 1;
          this.checker.observeSnapshot(slot.id, snapshot.metadata);
          this.trace(
            `node ${slot.id}: installed snapshot at ${snapshot.metadata.index} term ${snapshot.metadata.term}`,
          );
        },
        applied: (entry, result) => {
          this.checker.observeCommitted(slot.id, entry, slot.term);
          this.checker.observeApplied(slot.id, entry.index, describeResult(result));
          this.#options.listener.applied(slot.id, entry, result);
        },
        readStates: (readStates) => this.#options.listener.readStates(slot.id, readStates),
        crashed: (point) => this.#kill(slot, `crashed ${point}`),
      },
      crashesAt: (point, ready) => slot.crashPoint === point && strikes(point, ready),
      earlyVotes: this.#options.earlyVotes === true,
      scheduler: this.clock.scope(),
      activeWindowMs: this.#options.tuning.electionTicks * this.#options.tickInterval * MS_PER_UNIT,
      policy: this.#options.policy,
      rpc: this.rpc,
      restarted,
      joining: () => this.#options.listener.joining(slot.id),
      removed: (how, why) => {
        if (this.live(slot.id) !== node) return;
        this.removedNodes[how] += 1;
        this.destroy(slot.id, `removed (${how}): ${why}`);
      },
    });
    slot.node = node;
    slot.crashPoint = null;
  }

  #kill(slot: NodeSlot, how: string): void {
    slot.node?.stop();
    slot.node = null;
    slot.crashPoint = null;
    this.network.forget(slot.id);
    this.trace(`node ${slot.id}: ${how}`);
  }

  #send(node: SimNode, message: Message): void {
    this.promises.observeSent(message);
    if (message.type === "InstallSnapshot") {
      const receiver = this.live(message.to);
      if (receiver === undefined || this.network.isBlocked(message.from, message.to)) {
        this.#reports.push(() => node.core.reportSnapshot(message.to, false));
        return;
      }
      const chunks = Math.ceil(message.snapshot.data.length / SNAPSHOT_CHUNK_BYTES);
      const chunksLeft = Math.min(SNAPSHOT_CHUNKS_MAX, Math.max(1, chunks));
      this.#transfers.push({ message, sender: node, receiver, chunksLeft });
      return;
    }
    const outcome = this.network.send(message, this.now);
    if (outcome === "blocked") {
      this.#reports.push(() => node.core.reportUnreachable(message.to));
    }
  }

  /**
   * Moves every snapshot transfer on by one chunk. One whose sender or receiver crashed (or
   * restarted: another incarnation) or whose link is cut is given up, as the node's streams
   * give up, and its sender hears so; the last chunk hands the message to the network (its
   * delays and losses apply) and the sender hears that it was sent.
   */
  #moveSnapshotChunks(): void {
    for (const transfer of [...this.#transfers]) {
      const { message, sender, receiver } = transfer;
      const broken = this.live(message.from) !== sender || this.live(message.to) !== receiver ||
        this.network.isBlocked(message.from, message.to);
      transfer.chunksLeft -= broken ? 0 : 1;
      if (!broken && transfer.chunksLeft > 0) continue;
      this.#transfers.splice(this.#transfers.indexOf(transfer), 1);
      if (broken) {
        this.snapshotTransfersBroken += 1;
        this.trace(
          `snapshot ${message.from}->${message.to} broken with ${transfer.chunksLeft} chunks to go`,
        );
      }
      const outcome = broken ? "blocked" : this.network.send(message, this.now);
      if (this.live(message.from) === sender) {
        this.#reports.push(() => sender.core.reportSnapshot(message.to, outcome === "sent"));
      }
    }
  }

  /**
   * After a persist: Log Matching for the new entries, then the committed prefix. Every
   * entry at or below the persisted commit index must be the committed one, including
   * entries rewritten below a commit index checked before.
   */
  #checkPersisted(slot: NodeSlot, ready: Ready): void {
    if (ready.softState !== null) {
      this.trace(`node ${slot.id}: ${ready.softState.role} (leader ${ready.softState.leaderId})`);
    }
    if (ready.hardState !== null) slot.term = ready.hardState.term;
    if (ready.snapshot !== null) {
      this.checker.observeSnapshot(slot.id, ready.snapshot.metadata);
      slot.checkedCommit = Math.max(slot.checkedCommit, ready.snapshot.metadata.index);
    }
    const first = ready.entries[0];
    if (first !== undefined) {
      const previousTerm = slot.storage.term(first.index - 1);
      if (previousTerm === null) {
        throw new Error(`node ${slot.id}: no term before persisted index ${first.index}`);
      }
      this.checker.observePersisted(slot.id, ready.entries, previousTerm);
    }
    const commit = ready.hardState?.commit ?? slot.checkedCommit;
    const from = Math.max(
      slot.storage.firstIndex(),
      Math.min(first?.index ?? Infinity, slot.checkedCommit + 1),
    );
    for (let index = from; index <= commit; index++) {
      const [entry] = slot.storage.entries(index, index + 1, Infinity);
      if (entry !== undefined) this.checker.observeCommitted(slot.id, entry, slot.term);
    }
    slot.checkedCommit = Math.max(slot.checkedCommit, commit);
  }

  #observeInitialLog(slot: NodeSlot): void {
    const storage = slot.storage;
    if (storage.lastIndex() < storage.firstIndex()) return;
    const entries = storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity);
    this.checker.observePersisted(slot.id, entries, storage.term(storage.firstIndex() - 1) ?? 0);
    for (const entry of entries) {
      if (entry.index <= slot.checkedCommit) {
        this.checker.observeCommitted(slot.id, entry, slot.term);
      }
    }
  }

  #checkLeaders(): void {
    for (const slot of this.#slots.values()) {
      const node = slot.node;
      if (node === null) continue;
      const status = node.core.status();
      if (status.role !== "leader") continue;
      this.checker.observeLeader(slot.id, status.term);
      this.checker.checkLeaderCompleteness(slot.id, status.term, {
        term: (index) => node.storage.term(index),
        snapshotIndex: () => node.storage.firstIndex() - 1,
      });
    }
  }
}

/**
 * Whether an armed crash strikes at `point` of `ready`: only where the point separates two
 * things the Ready does, so that every armed crash tests a distinct state (messages out and
 * nothing on disk; state on disk and nothing it enables done).
 */
function strikes(point: CrashPoint, ready: Ready): boolean {
  switch (point) {
    case "beforeSend":
      return true;
    case "afterEarlySend":
      return ready.messagesBeforePersist.length > 0;
    case "afterPersist":
      return ready.messages.length > 0 || ready.committedEntries.length > 0 ||
        ready.readStates.length > 0;
  }
}

/** A one-line summary of a message for the trace. */
export function describeMessage(message: Message): string {
  const head = `${message.from}→${message.to} ${message.type} t${message.term}`;
  switch (message.type) {
    case "AppendEntries": {
      const last = message.entries.at(-1)?.index;
      const span = last === undefined ? "probe" : `${message.entries[0]?.index}..${last}`;
      return `${head} prev ${message.prevLogIndex}/t${message.prevLogTerm} [${span}] commit ${message.leaderCommit}`;
    }
    case "AppendEntriesResponse":
      return message.success
        ? `${head} ok match ${message.matchIndex}`
        : `${head} reject ${message.rejectedIndex} hint ${message.hintIndex}/t${message.hintTerm}`;
    case "RequestVote":
      return `${head}${
        message.preVote ? " pre" : ""
      } last ${message.lastLogIndex}/t${message.lastLogTerm}`;
    case "RequestVoteResponse":
      return `${head}${message.preVote ? " pre" : ""} ${
        message.voteGranted ? "granted" : "refused"
      }`;
    case "InstallSnapshot":
      return `${head} at ${message.snapshot.metadata.index}/t${message.snapshot.metadata.term}`;
    case "ReadIndexRequest":
      return `${head} read ${message.requestId}`;
    case "ReadIndexResponse":
      return `${head} read ${message.requestId} index ${message.index}`;
    default:
      return head;
  }
}

/** A canonical rendering of an apply result, byte arrays as hex, to compare across nodes. */
export function describeResult(result: ApplyResult): string {
  return JSON.stringify(
    result,
    (_key, value) => (value instanceof Uint8Array ? hex(value) : value),
  );
}

/** A short fingerprint of `bytes` (two FNV-1a hashes), to compare state machine images. */
export function digest(bytes: Uint8Array): string {
  let low = 0x811c9dc5;
  let high = 0x01000193 ^ bytes.length;
  for (const byte of bytes) {
    low = Math.imul(low ^ byte, 0x01000193) >>> 0;
    high = Math.imul(high ^ byte ^ (low >>> 24), 0x01000193) >>> 0;
  }
  return `${bytes.length}:${low.toString(16)}${high.toString(16)}`;
}
