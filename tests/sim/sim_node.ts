/**
 * `SimNode`: one running simulated node, that is a `RaftCore` over a `MemoryStorage` and a
 * `KvStateMachine` over a `MemoryStateStore`, driven by the production `ReadyDriver`, with
 * the production membership policy on top (`MembershipManager` over a `SimRaft`, its
 * autopilot run on the node's simulated clock and after every settled Ready, as
 * `ClusterMember` runs it), the node's RPC service (`ClusterService`: joins and removals
 * forwarded to the leader, `/status`) on the simulated RPC network (`SimRpc`), and its
 * `RemovalWatch`. A node stops for good when it applies its own removal or its watch finds
 * it out, as `ClusterMember` does. Only
 * the storage's durable image survives a crash; a restarted node rebuilds its state machine
 * from the storage's snapshot and lets the core re-deliver the committed entries after it,
 * as the real node does after losing its process.
 *
 * @module
 */

import { type RaftConfig, RaftCore } from "../../src/raft/raft_core.ts";
import { type Message, NO_NODE, type NodeId, type Ready } from "../../src/raft/types.ts";
import {
  type CrashPoint,
  ReadyDriver,
  type ReadyEvents,
} from "../../src/node/replication/ready_driver.ts";
import type { ApplyResult } from "../../src/state_machine/apply_result.ts";
import { KvStateMachine } from "../../src/state_machine/kv_state_machine.ts";
import { encodeMemberInfo, type MemberInfo } from "../../src/state_machine/member_info.ts";
import { foundingLog } from "../../src/state_machine/founding.ts";
import { MemoryStateStore } from "../../src/state_machine/memory_state_store.ts";
import { MemoryStorage } from "../../src/storage/memory_storage.ts";
import { MemberDirectory } from "../../src/node/membership/member_directory.ts";
import { MembershipManager } from "../../src/node/membership/membership_manager.ts";
import type { PromotionPolicy } from "../../src/node/membership/autopilot.ts";
import type { ScopedScheduler } from "./sim_clock.ts";
import { SimRaft } from "./sim_raft.ts";
import { ClusterError } from "../../src/node/replication/cluster_error.ts";
import { ClusterService } from "../../src/node/rpc/cluster_service.ts";
import { JoinsInFlight } from "../../src/node/membership/joins_in_flight.ts";
import { watchMemberForRemoval } from "../../src/node/membership/removal_watch.ts";
import { statusJson } from "../../src/node/status/status_view.ts";
import { REMOVE_RPC, STATUS_RPC } from "../../src/transport/cluster_rpcs.ts";
import { LEAVE_STOP_DELAY_MS, leaveCluster } from "../../src/node/membership/leave.ts";
import { handOverLeadership } from "../../src/node/membership/handover.ts";
import { SecretKey } from "../../src/transport/iroh.ts";
import { SIM_BOOTSTRAP_RPC, type SimRpc } from "./sim_rpc.ts";
import { PING_RPC, pingHandler } from "../../src/transport/ping_rpc.ts";
import { bootstrapInfoFor } from "../../src/bootstrap/bootstrap_info.ts";

/** The core's settings the simulator varies per run. */
export type RaftTuning = Pick<
  RaftConfig,
  | "electionTicks"
  | "heartbeatTicks"
  | "maxInflightMessages"
  | "maxMessageBytes"
  | "maxUncommittedBytes"
  | "preVote"
  | "checkQuorum"
>;

/** The cluster id every simulated cluster takes. */
export const SIM_CLUSTER_ID = "sim-cluster";

/** How a node is wired into the simulated world. */
export interface SimWiring {
  tuning: RaftTuning;
  random: () => number;
  send(messages: Message[]): void;
  /** The simulator's queue of work to run before the unit of time ends. */
  soon(run: () => void): void;
  events: ReadyEvents<ApplyResult>;
  crashesAt(point: CrashPoint, ready: Ready): boolean;
  /** The node's clock: its policy's timers end when it crashes (`close`). */
  scheduler: ScopedScheduler;
  /** The election timeout on `scheduler`'s clock: peers heard from within it are active. */
  activeWindowMs: number;
  /** The autopilot's voter cap. */
  policy: PromotionPolicy;
  /** The RPC network the node serves on and calls over. */
  rpc: SimRpc;
  /** The node restarts from its own state (its removal watch then asks for a while). */
  restarted: boolean;
  /** True while the machine's join runs (its removal watch waits for it). */
  joining(): boolean;
  /**
   * The node found out it was removed, by applying its own removal or by its removal
   * watch, or it left (`how`; `why` for the trace): it stops for good.
   */
  removed(how: "applied" | "watch" | "left", why: string): void;
  /**
   * Test-only sabotage: the core marks a granted vote as safe to send before the persist,
   * which breaks Raft §5.1 (a vote must be durable before it leaves).
   */
  earlyVotes?: boolean;
}

/**
 * A running node: consensus, durable log, state machine, the Ready driver between them,
 * and the membership policy.
 */
export class SimNode {
  readonly id: NodeId;
  readonly core: RaftCore;
  readonly storage: MemoryStorage;
  readonly stateMachine: KvStateMachine;
  readonly driver: ReadyDriver<ApplyResult>;
  /** The core as the membership policy sees it. */
  readonly raft: SimRaft;
  /** The production membership policy of this node (it acts while the node leads). */
  readonly membership: MembershipManager;
  /** The members this node knows, and where they are. */
  readonly directory: MemberDirectory;
  /** The node's clock. */
  readonly scheduler: ScopedScheduler;
  /** This incarnation restarted from the state a crash left. */
  readonly restarted: boolean;
  readonly #stopped: AbortController;

  private constructor(
    id: NodeId,
    parts: {
      storage: MemoryStorage;
      core: RaftCore;
      stateMachine: KvStateMachine;
      driver: ReadyDriver<ApplyResult>;
      raft: SimRaft;
      membership: MembershipManager;
      directory: MemberDirectory;
      scheduler: ScopedScheduler;
      stopped: AbortController;
      restarted: boolean;
    },
  ) {
    this.id = id;
    this.storage = parts.storage;
    this.core = parts.core;
    this.stateMachine = parts.stateMachine;
    this.driver = parts.driver;
    this.raft = parts.raft;
    this.membership = parts.membership;
    this.directory = parts.directory;
    this.scheduler = parts.scheduler;
    this.#stopped = parts.stopped;
    this.restarted = parts.restarted;
  }

  /**
   * Whether this node's Raft transport takes a message from node `from`: its key must be a
   * member's in this node's directory (`RaftTransport` refuses every other connection, and
   * closes those whose key stops being a member's: a removed node's, a revoked key).
   */
  acceptsRaftFrom(from: NodeId): boolean {
    return this.directory.memberIdOf(simP2pNodeId(from)) === from;
  }

  /** Aborts when the node crashes or stops: a request to it then gets no answer. */
  get stopped(): AbortSignal {
    return this.#stopped.signal;
  }

  /** The node crashed or stopped: its driver, pending proposals and timers end. */
  stop(): void {
    this.driver.stop();
    this.raft.stop();
    this.scheduler.close();
    this.#stopped.abort(new ClusterError("stopping", `node ${this.id} stopped`));
  }

  /**
   * Starts node `id` from what `storage` durably holds: nothing (a node about to join), a
   * founder's log, or the state a crashed node left behind.
   */
  static start(id: NodeId, storage: MemoryStorage, wiring: SimWiring): SimNode {
    const stateMachine = new KvStateMachine(new MemoryStateStore());
    const snapshot = storage.snapshot();
    if (snapshot.metadata.index > 0) stateMachine.restore(snapshot);
    const config: RaftConfig = {
      id,
      storage,
      applied: snapshot.metadata.index,
      ...wiring.tuning,
      random: wiring.random,
    };
    const core = wiring.earlyVotes === true ? new EarlyVoteCore(config) : new RaftCore(config);
    const scheduler = wiring.scheduler;
    const raft = new SimRaft(core, {
      scheduler,
      schedule: () => driver.schedule(),
      activeWindowMs: wiring.activeWindowMs,
    });
    // The node's directory, fed as `ClusterMember` feeds it: records from appended entries
    // and from the applied state.
    const directory = new MemberDirectory(id, {
      latest: () => core.status().confState,
      applied: () => stateMachine.appliedConfState(),
      revoked: (p2pNodeId) => stateMachine.isRevoked(p2pNodeId),
      appliedIndex: () => stateMachine.appliedIndex(),
    });
    const learnMembers = () => {
      for (const member of stateMachine.members()) {
        if (member.info !== null) directory.remember(member.info);
      }
    };
    learnMembers();
    const membership = new MembershipManager({
      nodeId: id,
      raft,
      directory,
      policy: wiring.policy,
      scheduler,
    });
    const stopped = new AbortController();
    const self = simMemberInfo(id);
    const rpcClient = wiring.rpc.client({ nodeId: id, p2pNodeId: self.p2pNodeId });
    const service = new ClusterService({
      nodeId: id,
      raft,
      stateMachine,
      directory,
      membership,
      rpcClient,
      status: () => {
        const status = core.status();
        return statusJson({
          nodeId: id,
          raft: status.lastIndex > 0 || status.term > 0 ? status : null,
          clusterId: stateMachine.clusterId(),
          appliedIndex: stateMachine.appliedIndex(),
          members: stateMachine.members(),
          directory,
          join: null,
          stopping: false,
          promotionPolicy: wiring.policy,
        });
      },
      // As `ClusterMember.leave`: the production steps, then the node stops a moment later.
      leave: async (signal) => {
        const answer = await leaveCluster({
          nodeId: id,
          raft,
          membership,
          handOver: async () => {
            await handOverLeadership(raft, { scheduler, signal: stopped.signal });
          },
          forwardRemove: (request, forwardSignal) =>
            service.forwardToLeader(REMOVE_RPC, request, forwardSignal),
          signal,
        });
        scheduler.after(LEAVE_STOP_DELAY_MS, () => wiring.removed("left", "it left the cluster"));
        return answer;
      },
      joins: new JoinsInFlight(wiring.policy),
    });
    const server = wiring.rpc.serve(
      { nodeId: id, p2pNodeId: self.p2pNodeId },
      { stopped: stopped.signal, scheduler },
    );
    service.register(server);
    // What a joiner's seed search asks: `ping`, and `/bootstrap` as the node's route answers.
    server.register(PING_RPC, pingHandler({ nodeId: id, p2pNodeId: self.p2pNodeId }));
    const endpoint = {
      nodeId: self.p2pNodeId,
      addresses: () => self.addresses,
      homeRelayUrl: () => null,
    };
    server.register(SIM_BOOTSTRAP_RPC, () => {
      const leaderId = core.status().leaderId;
      return bootstrapInfoFor(endpoint, {
        nodeId: id,
        clusterId: stateMachine.clusterId(),
        leaderId: leaderId === NO_NODE ? null : leaderId,
      });
    });
    // Its timer ends with the node's scheduler (`stop`).
    watchMemberForRemoval({
      nodeId: id,
      p2pNodeId: self.p2pNodeId,
      scheduler,
      raft: core,
      appliedConfState: () => stateMachine.appliedConfState(),
      clusterId: () => stateMachine.clusterId(),
      addressOf: (nodeId) => directory.addressOf(nodeId),
      restarted: wiring.restarted,
      joining: () => wiring.joining(),
      askStatus: (peer, options) => rpcClient.call(peer, STATUS_RPC, {}, options),
      learnMembers: (members, appliedIndex) => directory.rememberVouched(members, appliedIndex),
      onRemoved: (evidence) => wiring.removed("watch", evidence),
    }).start();
    const events = wiring.events;
    const driver: ReadyDriver<ApplyResult> = new ReadyDriver<ApplyResult>({
      core,
      storage,
      stateMachine,
      send: wiring.send,
      scheduler: { soon: wiring.soon },
      events: {
        ...events,
        appended: (entries) => directory.learnFromEntries(entries),
        applied: (entry, result) => {
          raft.applied(entry, result);
          if (entry.type === "membership" || result.type === "setMemberInfo") learnMembers();
          events.applied?.(entry, result);
          if (
            entry.type === "membership" && entry.change.type === "removeNode" &&
            entry.change.nodeId === id
          ) {
            // As `ClusterMember` stops: after the Ready, not inside it.
            scheduler.after(
              0,
              () => wiring.removed("applied", `it applied its own removal at ${entry.index}`),
            );
          }
        },
        softState: (softState) => raft.softStateChanged(softState),
        installed: (snapshot) => {
          raft.installed(snapshot.metadata.index);
          learnMembers();
          events.installed?.(snapshot);
        },
        settled: () => membership.promoteCaughtUpLearners(),
      },
      crashesAt: wiring.crashesAt,
    });
    // Its timer ends with the node's scheduler (`stop`).
    membership.startAutopilot();
    return new SimNode(id, {
      storage,
      core,
      stateMachine,
      driver,
      raft,
      membership,
      directory,
      scheduler,
      stopped,
      restarted: wiring.restarted,
    });
  }
}

/** The `earlyVotes` sabotage: a core that lets a granted vote leave before its persist. */
class EarlyVoteCore extends RaftCore {
  override ready(): Ready {
    const ready = super.ready();
    const isVote = (message: Message) =>
      message.type === "RequestVoteResponse" && message.voteGranted && !message.preVote;
    return {
      ...ready,
      messagesBeforePersist: [...ready.messagesBeforePersist, ...ready.messages.filter(isVote)],
      messages: ready.messages.filter((message) => !isVote(message)),
    };
  }
}

/**
 * The storage of a cluster's founding node: at term 1, index 1 adds it as a learner, index
 * 2 promotes it, index 3 names the cluster; all committed.
 */
export function founderStorage(founder: NodeId): MemoryStorage {
  // The same founding log the node writes (src/state_machine/founding.ts).
  const { entries, hardState } = foundingLog(simMemberInfo(founder), SIM_CLUSTER_ID);
  return new MemoryStorage({
    hardState,
    snapshot: {
      metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
      data: new Uint8Array(),
    },
    entries,
  });
}

/** The member record of a simulated node. */
export function simMemberInfo(nodeId: NodeId): MemberInfo {
  return {
    nodeId,
    p2pNodeId: simP2pNodeId(nodeId),
    addresses: [`127.0.0.1:${SIM_PORT_BASE + nodeId}`],
    relayUrl: null,
  };
}

/** The node whose address `address` (`host:port`, as in `--peers`) is. */
export function simNodeIdOf(address: string): NodeId {
  return Number(address.slice(address.lastIndexOf(":") + 1)) - SIM_PORT_BASE;
}

/** Node `nodeId` binds port `SIM_PORT_BASE + nodeId` (never opened: nothing leaves the process). */
const SIM_PORT_BASE = 7000;

/** The member record a simulated node joins with, encoded as an `addLearner` context. */
export function memberContext(nodeId: NodeId): Uint8Array {
  return encodeMemberInfo(simMemberInfo(nodeId));
}

const p2pNodeIds = new Map<NodeId, string>();

/**
 * The P2P id of simulated node `nodeId`: the public key of a secret key made of its id, so
 * that it is a valid Iroh endpoint id (the RPC schemas check), the same in every run.
 */
export function simP2pNodeId(nodeId: NodeId): string {
  let p2pNodeId = p2pNodeIds.get(nodeId);
  if (p2pNodeId === undefined) {
    const secret = new Array<number>(32).fill(0);
    secret[0] = nodeId & 0xff;
    secret[1] = (nodeId >> 8) & 0xff;
    secret[31] = 1;
    p2pNodeId = SecretKey.fromBytes(secret).public().toString();
    p2pNodeIds.set(nodeId, p2pNodeId);
  }
  return p2pNodeId;
}
