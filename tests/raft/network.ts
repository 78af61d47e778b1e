/**
 * An in-process network of `RaftCore` nodes on `MemoryStorage`, for short scenario tests.
 *
 * Each node runs the production Ready loop (`ReadyDriver`). Messages travel through one FIFO queue and pass through the network's drop
 * rules; `stabilize()` runs until no node has work and no message is in flight. The state
 * machine of every node is the list of commands it applied, so tests compare lists.
 * Everything is deterministic: randomness comes from a seeded xoroshiro128+.
 *
 * @module
 */

import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { confStateAfter } from "../../src/raft/membership.ts";
import { ReadyDriver } from "../../src/node/replication/ready_driver.ts";
import { type RaftConfig, RaftCore } from "../../src/raft/raft_core.ts";
import type { Entry, Message, NodeId, ReadState, Snapshot } from "../../src/raft/types.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";

/** Core settings for every node of a test network; anything left out takes a small test default. */
export type NetworkOptions = Partial<Omit<RaftConfig, "id" | "storage" | "applied" | "random">> & {
  /** Seed of the nodes' election-timeout randomness. */
  seed?: number;
};

const DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflightMessages: 64,
  maxMessageBytes: 1 << 20,
  maxUncommittedBytes: 1 << 24,
  preVote: true,
  checkQuorum: true,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Membership entries at term 1 that make `voters` voters and `learners` learners, as a founder's log would. */
export function membershipEntries(
  voters: readonly NodeId[],
  learners: readonly NodeId[] = [],
): Entry[] {
  const entries: Entry[] = [];
  const push = (change: Extract<Entry, { type: "membership" }>["change"]) =>
    entries.push({ type: "membership", term: 1, index: entries.length + 1, change });
  for (const nodeId of [...voters, ...learners]) {
    push({ type: "addLearner", nodeId, context: new Uint8Array() });
  }
  for (const nodeId of voters) push({ type: "promoteLearner", nodeId });
  return entries;
}

/** A core over `storage` with small settings for unit tests; `overrides` replace any of them. */
export function testCore(
  id: NodeId,
  storage: MemoryStorage,
  overrides: Partial<RaftConfig> = {},
): RaftCore {
  return new RaftCore({
    id,
    storage,
    applied: 0,
    electionTicks: 10,
    heartbeatTicks: 1,
    maxInflightMessages: 4,
    maxMessageBytes: 1 << 20,
    maxUncommittedBytes: 1 << 20,
    preVote: true,
    checkQuorum: true,
    random: () => 0,
    ...overrides,
  });
}

/** Steps into the leader `core` a success from `from` that matches its log up to `index`. */
export function acknowledge(core: RaftCore, from: NodeId, index: number): void {
  core.step({
    type: "AppendEntriesResponse",
    term: core.status().term,
    from,
    to: core.status().id,
    success: true,
    matchIndex: index,
    rejectedIndex: 0,
    hintIndex: 0,
    hintTerm: 0,
  });
}

/** A candidate's vote request in `term`, its log as long as a bootstrapped 3-voter one (6 entries of term 1). */
export function voteRequest(from: NodeId, to: NodeId, term: number): Message {
  return {
    type: "RequestVote",
    term,
    from,
    to,
    lastLogIndex: 6,
    lastLogTerm: 1,
    preVote: false,
    leadershipTransfer: false,
  };
}

/** Storage whose committed log at term 1 makes the given configuration. */
export function bootstrappedStorage(
  voters: readonly NodeId[],
  learners: readonly NodeId[] = [],
): MemoryStorage {
  const storage = new MemoryStorage();
  const entries = membershipEntries(voters, learners);
  storage.persist({
    hardState: { term: 1, vote: 0, commit: entries.length },
    snapshot: null,
    entries,
  });
  return storage;
}

/** One simulated machine: durable storage, the core, and a state machine of applied commands. */
export class TestNode {
  /** The node's Raft id. */
  readonly id: NodeId;
  /** Its durable storage; replaced by a copy of the durable image on a crash. */
  storage: MemoryStorage;
  /** The running core, or `null` while crashed. */
  core: RaftCore | null = null;
  /** The running core's Ready loop, or `null` while crashed. */
  driver: ReadyDriver<void> | null = null;
  /** Commands applied, in order (no-ops and membership entries are not commands). */
  commands: string[] = [];
  /** Index of the last entry applied to `commands`. */
  appliedIndex = 0;
  /** Every ReadState this node emitted. */
  readonly readStates: ReadState[] = [];
  /** Snapshots this node installed from a leader. */
  readonly installedSnapshots: Snapshot[] = [];
  readonly #random: () => number;
  /** Where the driver's sends go during `processReady()`. */
  #outbox: Message[] | null = null;

  /** A machine that is not started yet; `random` feeds its election timeouts. */
  constructor(id: NodeId, storage: MemoryStorage, random: () => number) {
    this.id = id;
    this.storage = storage;
    this.#random = random;
  }

  /** The running core; throws when the node is crashed. */
  get raft(): RaftCore {
    if (this.core === null) throw new Error(`node ${this.id} is crashed`);
    return this.core;
  }

  /** Starts the core from storage, restoring the state machine from the storage's snapshot. */
  start(options: NetworkOptions): void {
    const snapshot = this.storage.snapshot();
    this.commands = snapshot.metadata.index === 0 ? [] : decodeCommands(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    const { seed: _seed, ...coreOptions } = options;
    const core = new RaftCore({
      ...DEFAULTS,
      ...coreOptions,
      id: this.id,
      storage: this.storage,
      applied: this.appliedIndex,
      random: this.#random,
    });
    this.core = core;
    this.driver = new ReadyDriver<void>({
      core,
      storage: this.storage,
      stateMachine: {
        restore: (snapshot) => this.#restore(snapshot),
        applyAll: (entries) => this.#apply(entries),
      },
      send: (messages) => this.#outbox!.push(...messages),
      // The network runs each node's loop itself, in `stabilize()`.
      scheduler: { soon: () => {} },
      events: { readStates: (readStates) => this.readStates.push(...readStates) },
    });
  }

  /** Handles every Ready of the core; returns the messages to send, in the order they left. */
  processReady(): Message[] {
    const outbox: Message[] = [];
    this.#outbox = outbox;
    this.driver!.run();
    this.#outbox = null;
    return outbox;
  }

  #restore(snapshot: Snapshot): void {
    this.installedSnapshots.push(snapshot);
    this.commands = decodeCommands(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
  }

  #apply(entries: readonly Entry[]): void[] {
    for (const entry of entries) {
      if (entry.index !== this.appliedIndex + 1) {
        throw new Error(
          `node ${this.id}: applied ${this.appliedIndex}, next committed entry ${entry.index}`,
        );
      }
      if (entry.type === "normal" && entry.data.length > 0) {
        this.commands.push(decoder.decode(entry.data));
      }
      this.appliedIndex = entry.index;
    }
    return [];
  }

  /** A snapshot of the state machine at `appliedIndex`, for log compaction. */
  takeSnapshot(): Snapshot {
    const index = this.appliedIndex;
    const term = this.storage.term(index);
    if (term === null) throw new Error(`node ${this.id}: index ${index} is not in storage`);
    const firstIndex = this.storage.firstIndex();
    const entries = index >= firstIndex
      ? this.storage.entries(firstIndex, index + 1, Number.POSITIVE_INFINITY)
      : [];
    const confState = confStateAfter(this.storage.snapshot().metadata.confState, entries);
    return {
      metadata: { index, term, confState },
      data: encoder.encode(JSON.stringify(this.commands)),
    };
  }
}

function decodeCommands(data: Uint8Array): string[] {
  return JSON.parse(decoder.decode(data)) as string[];
}

/** Decides whether a message in flight is dropped. */
export type DropRule = (message: Message) => boolean;

/** Nodes plus the network between them. */
export class TestNetwork {
  /** Every machine, by id. */
  readonly nodes = new Map<NodeId, TestNode>();
  /** The core settings every node starts with. */
  readonly options: NetworkOptions;
  /** Every message delivered, in order (for assertions about traffic). */
  readonly delivered: Message[] = [];
  /** Deliver each batch of messages in a random order instead of FIFO. */
  reorder = false;
  /** Probability that a delivered message is delivered a second time. */
  duplicateProbability = 0;
  /** Report the outcome of every InstallSnapshot to its sender, as the transport must. */
  reportSnapshots = true;
  #rules: DropRule[] = [];
  #queue: Message[] = [];
  readonly #random: () => number;

  /** A network of the given nodes (by id and storage). Start them with `start()`. */
  constructor(storages: ReadonlyMap<NodeId, MemoryStorage>, options: NetworkOptions = {}) {
    this.options = options;
    const generator = xoroshiro128plus(options.seed ?? 1);
    this.#random = () => uniformFloat64(generator);
    for (const [id, storage] of storages) {
      this.nodes.set(id, new TestNode(id, storage, this.#random));
    }
    for (const node of this.nodes.values()) node.start(options);
  }

  /** A cluster of `voters` (and `learners`) that all start from the same committed configuration. */
  static cluster(
    voters: readonly NodeId[],
    options: NetworkOptions & { learners?: NodeId[] } = {},
  ): TestNetwork {
    const { learners = [], ...rest } = options;
    const storages = new Map<NodeId, MemoryStorage>();
    for (const id of [...voters, ...learners]) {
      storages.set(id, bootstrappedStorage(voters, learners));
    }
    return new TestNetwork(storages, rest);
  }

  /** The node with `id`. */
  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Adds a node with empty storage (a joining machine). */
  addEmptyNode(id: NodeId): TestNode {
    const node = new TestNode(id, new MemoryStorage(), this.#random);
    this.nodes.set(id, node);
    node.start(this.options);
    return node;
  }

  /** Drops every message for which `rule` is true, until `heal()`. */
  drop(rule: DropRule): void {
    this.#rules.push(rule);
  }

  /** Cuts `id` off from every other node. */
  isolate(id: NodeId): void {
    this.drop((message) => message.from === id || message.to === id);
  }

  /** Splits the network: messages cross between the groups no more. */
  partition(...groups: NodeId[][]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((group, i) => group.forEach((id) => groupOf.set(id, i)));
    this.drop((message) => groupOf.get(message.from) !== groupOf.get(message.to));
  }

  /** Removes every drop rule. */
  heal(): void {
    this.#rules = [];
  }

  /** The node loses its process; storage keeps what was persisted. */
  crash(id: NodeId): void {
    const node = this.node(id);
    node.core = null;
    node.driver = null;
    node.storage = MemoryStorage.fromDurableImage(node.storage.durableImage());
  }

  /** Starts a crashed node again from its storage. */
  restart(id: NodeId): void {
    this.node(id).start(this.options);
  }

  /** Processes Readies and delivers messages until nothing is left; throws if it does not settle. */
  stabilize(stepsMax = 100_000): void {
    for (let steps = 0; steps < stepsMax; steps += 1) {
      let busy = false;
      for (const node of this.nodes.values()) {
        if (node.core !== null && node.core.hasReady()) {
          this.#queue.push(...node.processReady());
          busy = true;
        }
      }
      const batch = this.#queue;
      this.#queue = [];
      if (this.reorder) this.#shuffle(batch);
      for (const message of batch) {
        this.#deliver(message);
        if (this.duplicateProbability > 0 && this.#random() < this.duplicateProbability) {
          this.#deliver(message);
        }
      }
      if (!busy && batch.length === 0) return;
    }
    throw new Error(`network did not settle within ${stepsMax} steps`);
  }

  /** `count` rounds of: tick every running node once, then stabilize. */
  tick(count = 1): void {
    for (let round = 0; round < count; round += 1) {
      for (const node of this.nodes.values()) node.core?.tick();
      this.stabilize();
    }
  }

  /** Ticks until some node is leader (at most `roundsMax` rounds); returns its id. */
  electLeader(roundsMax = 200): NodeId {
    for (let round = 0; round < roundsMax; round += 1) {
      const leader = this.leader();
      if (leader !== null) return leader;
      this.tick();
    }
    throw new Error(`no leader after ${roundsMax} rounds`);
  }

  /** The running node that is leader in the highest term, or null. */
  leader(): NodeId | null {
    let best: { id: NodeId; term: number } | null = null;
    for (const node of this.nodes.values()) {
      const status = node.core?.status();
      if (status?.role === "leader" && (best === null || status.term > best.term)) {
        best = { id: node.id, term: status.term };
      }
    }
    return best?.id ?? null;
  }

  /** Proposes `command` on node `id` and stabilizes; returns the propose result. */
  propose(id: NodeId, command: string): ReturnType<RaftCore["propose"]> {
    const result = this.node(id).raft.propose(encoder.encode(command));
    this.stabilize();
    return result;
  }

  /** Compacts node `id`'s log up to its applied index. */
  compact(id: NodeId): Snapshot {
    const node = this.node(id);
    const snapshot = node.takeSnapshot();
    node.storage.compact(snapshot);
    return snapshot;
  }

  /** A uniform draw in [0, 1) from the network's seeded stream. */
  random(): number {
    return this.#random();
  }

  #shuffle(messages: Message[]): void {
    for (let i = messages.length - 1; i > 0; i -= 1) {
      const j = Math.floor(this.#random() * (i + 1));
      [messages[i], messages[j]] = [messages[j]!, messages[i]!];
    }
  }

  #deliver(message: Message): void {
    const sender = this.nodes.get(message.from);
    const target = this.nodes.get(message.to);
    const dropped = target?.core == null || this.#rules.some((rule) => rule(message));
    if (message.type === "InstallSnapshot" && this.reportSnapshots) {
      sender?.core?.reportSnapshot(message.to, !dropped);
    }
    if (dropped) return;
    this.delivered.push(message);
    target!.core!.step(message);
  }
}
