/**
 * `ClusterMember`: the node as a member of its cluster, once its storage is open. It owns
 * the Raft loop, the member directory, the leader's membership manager and the RPC
 * service, and the lifecycle around them: joining, announcing changed addresses after a
 * restart, leaving, and the graceful stop that hands leadership over first.
 *
 * @module
 */

import type { ClusterSecret } from "../../auth/cluster_secret.ts";
import type { NodeConfig } from "../../config/node_config.ts";
import { reasonOf } from "../../util/errors.ts";
import type { NodeMetrics } from "../../http/metrics.ts";
import { getLogger } from "../../log/logging.ts";
import { isMember } from "../../raft/membership.ts";
import { type Message, NO_NODE, type NodeId } from "../../raft/types.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import {
  ANNOUNCE_RPC,
  REMOVE_RPC,
  STATUS_RPC,
  type StatusJson,
} from "../../transport/cluster_rpcs.ts";
import type { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import type { P2pConnection } from "../../transport/p2p_connection.ts";
import { RaftTransport } from "../../transport/raft_transport.ts";
import type { RpcClient } from "../../transport/rpc.ts";
import { ClusterError } from "../replication/cluster_error.ts";
import { ClusterService } from "../rpc/cluster_service.ts";
import {
  type ClusterState,
  removeIfPristine,
  selfMemberInfo,
} from "../local_state/cluster_state.ts";
import { recordToAnnounce, SelfAnnouncer } from "../membership/self_announcer.ts";
import type { JoinProgress } from "../join/join_progress.ts";
import {
  joinCluster,
  type JoinOptions,
  JoinRefusedError,
  startSeedSearch,
} from "../join/joiner.ts";
import { MemberRediscovery } from "../membership/member_rediscovery.ts";
import { JoinsInFlight } from "../membership/joins_in_flight.ts";
import { callRpc } from "../../transport/rpc.ts";
import type { Seed } from "../../bootstrap/bootstrap_client.ts";
import { txtResolverFor } from "../../bootstrap/peer_source.ts";
import { MemberDirectory } from "../membership/member_directory.ts";
import { MembershipManager } from "../membership/membership_manager.ts";
import { handOverLeadership } from "../membership/handover.ts";
import { LEAVE_STOP_DELAY_MS, leaveCluster } from "../membership/leave.ts";
import { DEFAULT_RAFT_TIMING, RaftNode } from "../replication/raft_node.ts";
import { type RemovalWatch, watchMemberForRemoval } from "../membership/removal_watch.ts";
import { type DiskFullJson, diskFullJson, statusJson } from "../status/status_view.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../../util/scheduler.ts";
import { forcedJson } from "../local_state/force_new_cluster.ts";
import { keptLearnerReason, type PromotionPolicy } from "../membership/autopilot.ts";

const log = getLogger(["blixard", "node"]);

/**
 * How often a node with `--relay-url` compares its endpoint's home relay with its member
 * record. A poll, because the binding's `watchHomeRelay` aborts the process when called
 * from JavaScript (it needs a Tokio runtime on the calling thread); a relay reached or
 * changed is recorded within this time.
 */
const HOME_RELAY_CHECK_MS = 2_000;
/** Pause between attempts to announce changed addresses. */
/** Deadline of one fallback to `--peers` after a restart: seed search, then status. */
const REDISCOVERY_SEARCH_TIMEOUT_MS = 3_000;

/** Options of a {@linkcode ClusterMember}. */
export interface ClusterMemberOptions {
  config: NodeConfig;
  /** The cluster secret, or `null` for none: a joiner proves it to its seed. */
  clusterSecret: ClusterSecret | null;
  endpoint: P2pEndpoint;
  state: ClusterState;
  rpcClient: RpcClient;
  joinProgress: JoinProgress;
  metrics: NodeMetrics;
  /** Releases the node's resources (HTTP, endpoint, storage, lock) once the member stopped. */
  onStop: () => Promise<void>;
  /** Entries between compactions (`BLIXARD_SNAPSHOT_INTERVAL_ENTRIES`, for tests). */
  snapshotIntervalEntries?: number;
  /**
   * Takes a Raft message before the core does (`true`: taken): an offer of a streamed
   * snapshot, which `SnapshotStreams` fetches and steps once it is staged.
   */
  takeMessage?: (message: Message) => boolean;
  /**
   * The clock of the Raft loop and of every membership policy (autopilot, removal watch,
   * rediscovery, handover, retries); the system's by default.
   */
  scheduler?: Scheduler;
}

/** The node as a cluster member. */
export class ClusterMember {
  readonly raft: RaftNode;
  readonly directory: MemberDirectory;
  readonly service: ClusterService;
  readonly membership: MembershipManager;
  readonly #options: ClusterMemberOptions;
  readonly #stopped = Promise.withResolvers<number>();
  readonly #transport: RaftTransport;
  #stopAutopilot: (() => void) | null = null;
  #stopRelayCheck: (() => void) | null = null;
  readonly #scheduler: Scheduler;
  /**
   * Aborted once the log adds this node (a learner, or promoted): its join in the
   * background is then done, whatever became of the join request's answer.
   */
  readonly #joinDone = new AbortController();
  /** True while `joinInBackground`'s join runs: the removal watch waits for it. */
  #joinRunning = false;
  /** The `since` that `diskFull` showed for the full disk that began at `sinceMs`. */
  #diskFullSince: { sinceMs: number; since: string } | null = null;
  #stopping: Promise<void> | null = null;
  readonly #abort = new AbortController();
  readonly #removalWatch: RemovalWatch;
  #rediscovery: MemberRediscovery | null = null;
  readonly #promotionPolicy: PromotionPolicy;
  readonly #joins: JoinsInFlight;
  readonly #announcer: SelfAnnouncer;

  constructor(options: ClusterMemberOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler ?? SYSTEM_SCHEDULER;
    const { config, state } = options;
    const nodeId = config.nodeId;
    this.#promotionPolicy = {
      votersMax: config.votersMax,
      keptLearner: (learner) => keptLearnerReason(state.stateMachine, learner),
    };
    this.#joins = new JoinsInFlight(this.#promotionPolicy);
    this.directory = new MemberDirectory(nodeId, {
      latest: () => this.raft.status().confState,
      applied: () => state.stateMachine.appliedConfState(),
      revoked: (p2pNodeId) => state.stateMachine.isRevoked(p2pNodeId),
      appliedIndex: () => state.stateMachine.appliedIndex(),
    });
    this.raft = new RaftNode({
      nodeId,
      storage: state.storage,
      stateMachine: state.stateMachine,
      timing: DEFAULT_RAFT_TIMING,
      scheduler: this.#scheduler,
      send: (messages) => this.#transport.send(messages),
      ...(options.snapshotIntervalEntries === undefined
        ? {}
        : { snapshotIntervalEntries: options.snapshotIntervalEntries }),
    });
    this.#transport = new RaftTransport({
      endpoint: options.endpoint,
      nodeId,
      directory: this.directory,
      onMessage: (message) => {
        if (options.takeMessage?.(message) !== true) this.raft.step(message);
      },
      onUnreachable: (peerId) => this.raft.reportUnreachable(peerId),
      // A ticket joiner's greeting reaches its leader here: its first entries follow at once,
      // not at the next heartbeat (up to 60 ms later).
      onPeerConnected: (peerId) => this.raft.reportReachable(peerId),
      onLogLineSuppressed: () => options.metrics.recordLogLineSuppressed("raft_connection_refused"),
    });
    this.membership = new MembershipManager({
      nodeId,
      raft: this.raft,
      directory: this.directory,
      inviteRefusal: (use) => state.stateMachine.inviteRefusal(use.tokenHash, use.nowMs),
      scheduler: this.#scheduler,
      policy: this.#promotionPolicy,
    });
    this.service = new ClusterService({
      nodeId,
      raft: this.raft,
      stateMachine: state.stateMachine,
      directory: this.directory,
      membership: this.membership,
      rpcClient: options.rpcClient,
      status: () => this.status(),
      leave: (signal) => this.leave(signal),
      joins: this.#joins,
      clusterSecret: options.clusterSecret,
    });
    this.#removalWatch = this.#watchForRemoval();
    this.#announcer = new SelfAnnouncer({
      current: () =>
        recordToAnnounce(selfMemberInfo(nodeId, options.endpoint), {
          recorded: this.directory.recordOf(nodeId),
          relayConfigured: options.endpoint.relayUrl !== null,
        }),
      recorded: () => this.directory.recordOf(nodeId),
      send: (member, signal) =>
        this.raft.softState.role === "leader"
          ? this.membership.announce(member, signal)
          : this.service.forwardToLeader(ANNOUNCE_RPC, { member }, signal),
      scheduler: this.#scheduler,
      signal: this.#abort.signal,
    });
    this.#learnKnownMembers();
    this.raft.on(this.membership.autopilotEvents());
    this.raft.on({
      appended: (entries) => this.directory.learnFromEntries(entries),
      afterReady: () => this.#noticeMembershipFromSnapshot(),
      applied: (entry, result) => {
        if (result.type === "setMemberInfo") this.#refreshMembers();
        if (entry.type === "normal") return;
        this.#refreshMembers();
        if (entry.change.nodeId !== nodeId) return;
        if (entry.change.type !== "removeNode") this.#joinDone.abort();
        if (entry.change.type === "promoteLearner") this.#becameVoter();
        if (entry.change.type === "removeNode") this.#removed();
      },
    });
  }

  /** Resolves with the exit code once stopped. */
  get finished(): Promise<number> {
    return this.#stopped.promise;
  }

  /** False once stopping: `/health` answers 503. */
  get isServing(): boolean {
    return this.#stopping === null;
  }

  /**
   * While the disk is full: since when, the storage's error, the bytes free (`/status`
   * `disk_full`, and `/health` answers 503); `null` while it has room.
   */
  get diskFull(): DiskFullJson | null {
    const diskFull = this.raft.diskFull;
    if (diskFull === null) return null;
    const json = diskFullJson(
      diskFull,
      { nowMs: this.#scheduler.now(), wallNowMs: Date.now() },
      this.#options.state.storage.freeBytes(),
    );
    // The wall time is worked out once per episode, so every read shows the same `since`.
    if (this.#diskFullSince?.sinceMs !== diskFull.sinceMs) {
      this.#diskFullSince = { sinceMs: diskFull.sinceMs, since: json.since };
    }
    return { ...json, since: this.#diskFullSince.since };
  }

  /** Sends Raft messages as they are, past the core (a streamed snapshot's offer). */
  sendRaftMessages(messages: Message[]): void {
    this.#transport.send(messages);
  }

  /**
   * Starts the transport, the Raft loop and the autopilot; with a relay configured, the
   * look at the endpoint's home relay that keeps this member's record on it.
   */
  start(): void {
    this.#transport.start();
    this.raft.start();
    this.#stopAutopilot = this.membership.startAutopilot();
    this.#removalWatch.start();
    if (this.#options.endpoint.relayUrl !== null) {
      this.#stopRelayCheck = this.#scheduler.every(
        HOME_RELAY_CHECK_MS,
        () => this.announceAddressesInBackground(),
      );
    }
  }

  /** The `/status` document. */
  status(): StatusJson {
    const { stateMachine } = this.#options.state;
    const raft = this.raft.status();
    const hasRaftState = raft.lastIndex > 0 || raft.term > 0;
    const forced = this.#options.state.forced;
    const status = statusJson({
      nodeId: this.#options.config.nodeId,
      raft: hasRaftState ? raft : null,
      clusterId: stateMachine.clusterId(),
      appliedIndex: stateMachine.appliedIndex(),
      members: stateMachine.members(),
      directory: this.directory,
      join: this.#options.joinProgress.toJson(),
      joinsInFlight: this.#joins.toJson(hasRaftState ? raft : null),
      pathOf: (memberId) => this.#transport?.pathTo(memberId) ?? null,
      stopping: this.#stopping !== null,
      promotionPolicy: this.#promotionPolicy,
      diskFull: this.diskFull,
    });
    return forced === null ? status : { ...status, forced: forcedJson(forced) };
  }

  /**
   * Finishes a join by invite ticket whose claim (`invite_join.ts`) already added this node
   * as a learner: nothing is left to ask. It learns the members the answer names and greets
   * the leader, whose Raft messages it refuses while it knows no member; a second join
   * through the ticket's members (an Iroh connect, the secret's proof, `cluster.status` and
   * `cluster.join`) would only find it added. `leaderDial` is a Raft connection to the
   * leader the node opened while it started, used instead of a new one.
   */
  joinedByInvite(
    claimed: { leaderId: NodeId; members: MemberInfo[] },
    leaderDial: Promise<P2pConnection | null> | null = null,
  ): void {
    this.#options.joinProgress.advance("learner");
    this.directory.rememberProvisional(claimed.members);
    this.#refreshMembers();
    if (leaderDial === null) {
      this.#transport.greet(claimed.leaderId);
      return;
    }
    // The node dialled its leader while it started (`dialRaft`); greeted the usual way if
    // that failed.
    void leaderDial.then((connection) => {
      if (connection === null) this.#transport.greet(claimed.leaderId);
      else this.#transport.adopt(claimed.leaderId, connection);
    });
  }

  /**
   * Joins through `--peers` in the background; a failed join stops the node with exit 1.
   * `firstSeed` is a seed search the node started before this member existed;
   * `discoverSeed`, with mDNS on, finds seeds by mDNS (raced against `--peers`).
   */
  joinInBackground(firstSeed?: Promise<Seed>, discoverSeed?: JoinOptions["discoverSeed"]): void {
    const { config, endpoint, joinProgress, metrics, state } = this.#options;
    joinProgress.advance("discovering");
    this.#joinRunning = true;
    joinCluster({
      ...(firstSeed === undefined ? {} : { firstSeed }),
      ...(discoverSeed === undefined ? {} : { discoverSeed }),
      peers: config.peers,
      ticket: config.joinTicket,
      endpoint,
      self: state.self,
      directory: this.directory,
      progress: joinProgress,
      joinTimeoutMs: config.joinTimeoutMs,
      clusterSecret: this.#options.clusterSecret,
      resolveTxt: txtResolverFor(config.dnsServer),
      onBootstrapEvent: (event) => {
        metrics.recordBootstrapFetch(event.outcome);
        if (event.reason !== null) joinProgress.failed(event.message);
      },
      signal: AbortSignal.any([this.#abort.signal, this.#joinDone.signal]),
      scheduler: this.#scheduler,
    }).finally(() => this.#joinRunning = false).then(
      (joined) => {
        this.#refreshMembers();
        this.#transport.greet(joined.leaderId);
      },
      (error) => {
        if (this.#stopping !== null) return;
        // The answer to its join request was lost (a loaded machine, a leader change), but
        // the log made this node a member: the join is done, not failed.
        const self = config.nodeId;
        if (this.#joinDone.signal.aborted || isMember(this.raft.status().confState, self)) {
          log.info("the cluster added this node; its join request went unanswered: {message}", {
            message: reasonOf(error),
          });
          joinProgress.advance("learner");
          // As after an answer: the log's leader, if known, gets a connection from this node.
          this.#refreshMembers();
          const leaderId = this.raft.softState.leaderId;
          if (leaderId !== NO_NODE) this.#transport.greet(leaderId);
          return;
        }
        const message = error instanceof JoinRefusedError ? error.message : reasonOf(error);
        log.error("join failed: {message}", { message });
        this.stop("the join failed", 1);
      },
    );
  }

  /**
   * Records this node's current addresses and home relay through the log when they differ
   * from its member record (after a restart with another `--bind`, and whenever the
   * endpoint reaches or changes its home relay), retrying until a leader takes it.
   */
  announceAddressesInBackground(): void {
    void this.#announcer.check();
  }

  /**
   * After a restart with `--peers`: while no leader is heard of, falls back to them to
   * learn where the recorded members are now (`member_rediscovery.ts`).
   */
  rediscoverMembersInBackground(): void {
    const { config, endpoint, clusterSecret, state } = this.#options;
    if (config.peers.length === 0) return;
    log.info(
      "restarting as member {nodeId}: --peers {peers} is used only when none of the recorded " +
        "members answers",
      { nodeId: config.nodeId, peers: config.peers.join(",") },
    );
    this.#rediscovery = new MemberRediscovery({
      scheduler: this.#scheduler,
      leaderless: () => {
        const status = this.raft.status();
        return this.#stopping === null && status.leaderId === NO_NODE &&
          isMember(status.confState, config.nodeId);
      },
      clusterId: () => state.stateMachine.clusterId(),
      recordOf: (nodeId) => nodeId === config.nodeId ? null : this.directory.recordOf(nodeId),
      askPeers: async () => {
        const seed = await startSeedSearch({
          peers: config.peers,
          endpoint,
          clusterSecret,
          resolveTxt: txtResolverFor(config.dnsServer),
          signal: this.#abort.signal,
        }, REDISCOVERY_SEARCH_TIMEOUT_MS);
        try {
          const status = await callRpc(seed.connection, STATUS_RPC, {}, {
            timeoutMs: REDISCOVERY_SEARCH_TIMEOUT_MS,
            signal: this.#abort.signal,
          });
          return { peer: seed.peer, status };
        } finally {
          seed.connection.close("members learned");
        }
      },
      onMoved: (moved, peer) => {
        log.info("no recorded member answered; learned through --peers {peer}: {moved}", {
          peer,
          moved: moved.map((member) => `node ${member.nodeId} at ${member.addresses.join(",")}`)
            .join("; "),
        });
        for (const member of moved) this.directory.remember(member);
        this.#transport.refreshMembers();
      },
      onFailed: (reason) => {
        log.warn("no recorded member answered, and --peers did not help: {reason}", { reason });
      },
    });
    this.#rediscovery.start();
  }

  /**
   * `cluster.leave`: hands leadership over if this node leads, has the leader remove it,
   * answers, then stops. The last voter cannot leave.
   */
  async leave(signal: AbortSignal): Promise<{ index: number }> {
    const answer = await leaveCluster({
      nodeId: this.#options.config.nodeId,
      raft: this.raft,
      membership: this.membership,
      handOver: () => this.#handOverLeadership(),
      forwardRemove: (request, forwardSignal) =>
        this.service.forwardToLeader(REMOVE_RPC, request, forwardSignal),
      signal,
    });
    this.#scheduler.after(LEAVE_STOP_DELAY_MS, () => this.stop("left the cluster"));
    return answer;
  }

  /** Stops gracefully: a leader hands over first; then everything is released. Idempotent. */
  stop(reason: string, exitCode = 0): Promise<void> {
    this.#stopping ??= (async () => {
      log.info("stopping: {reason}", { reason });
      if (exitCode === 0) await this.#handOverLeadership();
      this.#abort.abort(new ClusterError("stopping", "the node is stopping"));
      this.#stopAutopilot?.();
      this.#stopRelayCheck?.();
      this.#removalWatch.stop();
      this.#rediscovery?.stop();
      this.raft.stop();
      this.#transport.close();
      if (
        this.#options.joinProgress.phase !== null && this.#options.joinProgress.phase !== "voter"
      ) {
        removeIfPristine(this.#options.state.storage);
      }
      await this.#options.onStop();
      log.info("stopped");
      this.#stopped.resolve(exitCode);
    })();
    return this.#stopping;
  }

  async #handOverLeadership(): Promise<void> {
    await handOverLeadership(this.raft, {
      scheduler: this.#scheduler,
      signal: this.#abort.signal,
    });
  }

  #learnKnownMembers(): void {
    const { storage, stateMachine } = this.#options.state;
    for (const member of stateMachine.members()) {
      if (member.info !== null) this.directory.remember(member.info);
    }
    // Members added by entries that are in the log but not applied yet.
    const applied = stateMachine.appliedIndex();
    const last = storage.lastIndex();
    let next = Math.max(applied + 1, storage.firstIndex());
    while (next <= last) {
      const entries = storage.entries(next, last + 1, 1024 * 1024);
      this.directory.learnFromEntries(entries);
      next = entries[entries.length - 1]!.index + 1;
    }
  }

  #refreshMembers(): void {
    for (const member of this.#options.state.stateMachine.members()) {
      if (member.info !== null) this.directory.remember(member.info);
    }
    this.#transport.refreshMembers();
  }

  /**
   * A joiner whose addition (and maybe promotion) reached it inside the leader's snapshot
   * applies no entry naming it: its join ends, and it is a voter, when its applied
   * configuration says so. Without this its join request waited out its deadline and its
   * `/status` said `learner` for good (found by the simulator, seed 230 of issue 8).
   */
  #noticeMembershipFromSnapshot(): void {
    const phase = this.#options.joinProgress.phase;
    if (phase === null || phase === "voter") return;
    const nodeId = this.#options.config.nodeId;
    // The log's latest configuration (in memory) says first whether there is news; the applied
    // one (a read of the state store) decides.
    const latest = this.raft.status().confState;
    const news = this.#joinDone.signal.aborted
      ? latest.voters.includes(nodeId)
      : isMember(latest, nodeId);
    if (!news) return;
    const conf = this.#options.state.stateMachine.appliedConfState();
    if (!isMember(conf, nodeId)) return;
    this.#joinDone.abort();
    if (conf.voters.includes(nodeId)) this.#becameVoter();
  }

  #becameVoter(): void {
    const progress = this.#options.joinProgress;
    if (progress.phase === null || progress.phase === "voter") return;
    progress.advance("voter");
    log.info("promoted to voter: the join is complete");
  }

  #removed(): void {
    log.warn("this node was removed from the cluster; stopping");
    this.#scheduler.after(0, () => this.stop("removed from the cluster"));
  }

  /**
   * The removal entry never reaches a node the others already refuse (see
   * `removal_watch.ts`): while leaderless, and for a while after a restart, it asks the
   * members whether it still is one.
   */
  #watchForRemoval(): RemovalWatch {
    const { config, endpoint, rpcClient, state } = this.#options;
    return watchMemberForRemoval({
      nodeId: config.nodeId,
      p2pNodeId: endpoint.nodeId,
      scheduler: this.#scheduler,
      raft: this.raft,
      appliedConfState: () => state.stateMachine.appliedConfState(),
      clusterId: () => state.stateMachine.clusterId(),
      addressOf: (id) => this.directory.addressOf(id),
      restarted: state.start === "restart",
      joining: () => this.#joinRunning,
      askStatus: (peer, options) => rpcClient.call(peer, STATUS_RPC, {}, options),
      learnMembers: (members, appliedIndex) =>
        this.directory.rememberVouched(members, appliedIndex),
      onRemoved: (evidence) => {
        log.warn(
          "this node was removed from the cluster: {evidence}; stopping. Its data dir no " +
            "longer belongs to a member: to add this machine again, start it with an empty " +
            "--data-dir and --peers",
          { evidence },
        );
        this.stop("removed from the cluster");
      },
    });
  }
}
