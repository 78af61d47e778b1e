/**
 * Raft nodes in one process, for tests of the node layer without a network: each
 * `RaftNode` over its own `SqliteStorage` in a temp dir, with a `MemberDirectory` and a
 * `MembershipManager` wired the way `ClusterMember` wires them, and messages carried by an
 * in-memory network that a test can cut per node or filter by message. Production code does
 * not import this.
 *
 * @module
 */

import type { Entry, MembershipChange, Message, MessageType, NodeId } from "../../raft/types.ts";
import { encodeCommand } from "../../state_machine/commands.ts";
import { KvStateMachine } from "../../state_machine/kv_state_machine.ts";
import { encodeMemberInfo, type MemberInfo } from "../../state_machine/member_info.ts";
import { SqliteStateStore } from "../../state_machine/sqlite_state_store.ts";
import { SqliteStorage } from "../../storage/sqlite_storage.ts";
import { MemberDirectory } from "../membership/member_directory.ts";
import { MembershipManager } from "../membership/membership_manager.ts";
import { RaftNode, type RaftTiming } from "../replication/raft_node.ts";
import { PROMOTION_POLICY_DEFAULT } from "../membership/autopilot.ts";
import { eventually } from "../../transport/testing.ts";
import { PausableClock } from "./pausable_clock.ts";

/** A 100–200 ms election timeout and 20 ms heartbeats: elections in a test take a blink. */
export const FAST_RAFT_TIMING: RaftTiming = { tickMs: 10, electionTicks: 10, heartbeatTicks: 2 };

/** The member record of test node `nodeId`: a distinct, stable P2P id per `keySeed`. */
export function memberInfoOf(nodeId: NodeId, options: { keySeed?: number } = {}): MemberInfo {
  return {
    nodeId,
    p2pNodeId: (options.keySeed ?? nodeId).toString(16).padStart(64, "0"),
    addresses: [`127.0.0.1:${7000 + nodeId}`],
    relayUrl: null,
  };
}

/** One node of an `InProcessCluster`. */
export interface TestMember {
  readonly nodeId: NodeId;
  readonly info: MemberInfo;
  readonly dataDir: string;
  readonly storage: SqliteStorage;
  readonly stateMachine: KvStateMachine;
  readonly raft: RaftNode;
  readonly directory: MemberDirectory;
  readonly membership: MembershipManager;
}

/**
 * Carries messages between the nodes of a cluster, each on a later macrotask (as a network
 * would), and drops those from or to a node that is cut off.
 */
class InProcessNetwork {
  readonly #targets = new Map<NodeId, RaftNode>();
  readonly #cut = new Set<NodeId>();
  readonly #blocked = new Set<(message: Message) => boolean>();
  readonly #delivered = new Map<MessageType, number>();
  #queue: Message[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;

  attach(raft: RaftNode): void {
    this.#targets.set(raft.nodeId, raft);
  }

  send(messages: readonly Message[]): void {
    this.#queue.push(...messages);
    this.#timer ??= setTimeout(() => this.#deliver(), 0);
  }

  cut(nodeId: NodeId): void {
    this.#cut.add(nodeId);
  }

  heal(nodeId: NodeId): void {
    this.#cut.delete(nodeId);
  }

  /** Drops every message `matches` selects until the returned function is called. */
  block(matches: (message: Message) => boolean): () => void {
    this.#blocked.add(matches);
    return () => this.#blocked.delete(matches);
  }

  /** True when no message waits for delivery. */
  get idle(): boolean {
    return this.#queue.length === 0;
  }

  /** Messages of `type` delivered so far. */
  deliveredCount(type: MessageType): number {
    return this.#delivered.get(type) ?? 0;
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#queue = [];
  }

  #deliver(): void {
    this.#timer = null;
    const messages = this.#queue;
    this.#queue = [];
    for (const message of messages) {
      if (this.#cut.has(message.from) || this.#cut.has(message.to)) continue;
      if ([...this.#blocked].some((matches) => matches(message))) continue;
      const target = this.#targets.get(message.to);
      if (target === undefined) continue;
      this.#delivered.set(message.type, this.deliveredCount(message.type) + 1);
      target.step(message);
    }
  }
}

/** Options of {@linkcode InProcessCluster.create}. */
export interface InProcessClusterOptions {
  /** Nodes 1…`voters` start as the voters of one cluster. */
  voters: number;
  /** Passed to every `RaftNode`; lower it to exercise compaction. */
  snapshotIntervalEntries?: number;
}

/** Several `RaftNode`s in one process; close it in a `finally`. */
export class InProcessCluster {
  readonly network = new InProcessNetwork();
  /** Every node's clock: the system clock until a test pauses it. */
  readonly clock = new PausableClock();
  readonly members = new Map<NodeId, TestMember>();
  readonly #options: InProcessClusterOptions;
  readonly #dataDirs: string[] = [];

  private constructor(options: InProcessClusterOptions) {
    this.#options = options;
  }

  /** Starts nodes 1…`voters` from a founding log that names all of them as voters. */
  static create(options: InProcessClusterOptions): InProcessCluster {
    const cluster = new InProcessCluster(options);
    const infos = Array.from({ length: options.voters }, (_, i) => memberInfoOf(i + 1));
    const entries = foundingEntries(infos);
    for (const info of infos) {
      const dataDir = cluster.#newDataDir();
      const storage = SqliteStorage.open(dataDir);
      storage.persist({
        hardState: { term: 1, vote: 0, commit: entries.length },
        entries,
        snapshot: null,
      });
      const member = cluster.#startMember(info, { dataDir, storage });
      for (const known of infos) member.directory.remember(known);
    }
    return cluster;
  }

  /** Starts a node with an empty log, as a joiner is before the leader adds it. */
  addNode(info: MemberInfo): TestMember {
    const dataDir = this.#newDataDir();
    return this.#startMember(info, { dataDir, storage: SqliteStorage.open(dataDir) });
  }

  /** The member `nodeId`; throws when there is none. */
  member(nodeId: NodeId): TestMember {
    const member = this.members.get(nodeId);
    if (member === undefined) throw new Error(`no member ${nodeId} in this test cluster`);
    return member;
  }

  /** Waits for a leader that every node not cut off follows, and returns it. */
  async leader(): Promise<TestMember> {
    let leader: TestMember | undefined;
    await eventually("one leader is followed by all", () => {
      leader = [...this.members.values()].find((member) => member.raft.softState.role === "leader");
      return leader !== undefined &&
        [...this.members.values()].every((member) =>
          member.raft.softState.leaderId === leader!.nodeId
        );
    });
    return leader!;
  }

  /**
   * With the clock paused: moves it forward by `ms`, letting every tick that falls due
   * run and the messages and Readies it sets off settle before the next.
   */
  advance(ms: number): Promise<void> {
    return this.clock.advance(ms, () => this.#quiet());
  }

  /** Waits until no message is in flight across a few turns of the event loop. */
  async #quiet(): Promise<void> {
    const quietTurnsMin = 3;
    for (let quietTurns = 0; quietTurns < quietTurnsMin;) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      quietTurns = this.network.idle ? quietTurns + 1 : 0;
    }
  }

  /** A member other than `nodeId`. */
  other(nodeId: NodeId): TestMember {
    const other = [...this.members.values()].find((member) => member.nodeId !== nodeId);
    if (other === undefined) throw new Error(`no member other than ${nodeId}`);
    return other;
  }

  /** Stops node `nodeId` and starts it again from its storage, as after a crash and restart. */
  restart(nodeId: NodeId): TestMember {
    const { info, dataDir, raft, storage } = this.member(nodeId);
    raft.stop();
    storage.close();
    const member = this.#startMember(info, { dataDir, storage: SqliteStorage.open(dataDir) });
    for (const record of member.stateMachine.members()) {
      if (record.info !== null) member.directory.remember(record.info);
    }
    return member;
  }

  /** Stops every node, closes its storage and removes the data dirs. */
  async close(): Promise<void> {
    for (const member of this.members.values()) member.raft.stop();
    this.network.close();
    // A Ready pass scheduled before the stop still runs (and returns at once): let it.
    await new Promise((resolve) => setTimeout(resolve, 1));
    for (const member of this.members.values()) member.storage.close();
    for (const dataDir of this.#dataDirs) Deno.removeSync(dataDir, { recursive: true });
  }

  #newDataDir(): string {
    const dataDir = Deno.makeTempDirSync({ prefix: "blixard-node-test-" });
    this.#dataDirs.push(dataDir);
    return dataDir;
  }

  #startMember(
    info: MemberInfo,
    context: { dataDir: string; storage: SqliteStorage },
  ): TestMember {
    const { dataDir, storage } = context;
    const stateMachine = new KvStateMachine(new SqliteStateStore(storage));
    const raft = new RaftNode({
      nodeId: info.nodeId,
      storage,
      stateMachine,
      send: (messages) => this.network.send(messages),
      timing: FAST_RAFT_TIMING,
      scheduler: this.clock,
      ...(this.#options.snapshotIntervalEntries === undefined
        ? {}
        : { snapshotIntervalEntries: this.#options.snapshotIntervalEntries }),
    });
    const directory = new MemberDirectory(info.nodeId, {
      latest: () => raft.status().confState,
      applied: () => stateMachine.appliedConfState(),
      revoked: (p2pNodeId) => stateMachine.isRevoked(p2pNodeId),
    });
    raft.on({
      appended: (entries) => directory.learnFromEntries(entries),
      applied: () => {
        for (const record of stateMachine.members()) {
          if (record.info !== null) directory.remember(record.info);
        }
      },
    });
    const membership = new MembershipManager({
      nodeId: info.nodeId,
      raft,
      directory,
      inviteRefusal: (use) => stateMachine.inviteRefusal(use.tokenHash, use.nowMs),
      policy: PROMOTION_POLICY_DEFAULT,
    });
    const member = {
      nodeId: info.nodeId,
      info,
      dataDir,
      storage,
      stateMachine,
      raft,
      directory,
      membership,
    };
    this.members.set(info.nodeId, member);
    this.network.attach(raft);
    raft.start();
    return member;
  }
}

/** The log of a cluster founded with all of `infos` as voters, committed at term 1. */
function foundingEntries(infos: MemberInfo[]): Entry[] {
  const changes: MembershipChange[] = infos.flatMap((info) => [
    { type: "addLearner" as const, nodeId: info.nodeId, context: encodeMemberInfo(info) },
    { type: "promoteLearner" as const, nodeId: info.nodeId },
  ]);
  const entries: Entry[] = changes.map((change, i) => ({
    type: "membership",
    term: 1,
    index: i + 1,
    change,
  }));
  const data = encodeCommand({ type: "initCluster", clusterId: "test-cluster" });
  entries.push({ type: "normal", term: 1, index: entries.length + 1, data });
  return entries;
}
