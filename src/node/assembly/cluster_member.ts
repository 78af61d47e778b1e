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
import { type Message, NO_NODE } from "../../raft/types.ts";
import {
  ANNOUNCE_RPC,
  REMOVE_RPC,
  STATUS_RPC,
  type StatusJson,
} from "../../transport/cluster_rpcs.ts";
import type { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import { RaftTransport } from "../../transport/raft_transport.ts";
import type { RpcClient } from "../../transport/rpc.ts";
import { ClusterError } from "../replication/cluster_error.ts";
import { ClusterService } from "../rpc/cluster_service.ts";
import { type ClusterState, removeIfPristine } from "../local_state/cluster_state.ts";
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
import { MemberDirectory, sameAddresses } from "../membership/member_directory.ts";
import { MembershipManager } from "../membership/membership_manager.ts";
import { DEFAULT_RAFT_TIMING, RaftNode } from "../replication/raft_node.ts";
import { RemovalWatch, RESTART_CHECK_MS } from "../membership/removal_watch.ts";
import { type DiskFullJson, diskFullJson, statusJson } from "../status/status_view.ts";
import { sleepOn } from "../../util/sleep.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../../util/scheduler.ts";
import { forcedJson } from "../local_state/force_new_cluster.ts";
import type { PromotionPolicy } from "../membership/autopilot.ts";

const log = getLogger(["blixard", "node"]);

/**
 * How often the leader looks for learners to promote when nothing happens; it also looks
 * after every batch of Ready passes, which is what makes a join fast.
 */
const AUTOPILOT_INTERVAL_MS = 100;
/** How long a stopping or leaving leader waits for its successor to take over. */
const HANDOVER_TIMEOUT_MS = 2_000;
/** Pause between attempts to announce changed addresses. */
const ANNOUNCE_RETRY_MS = 250;
/** Deadline of one fallback to `--peers` after a restart: seed search, then status. */
const REDISCOVERY_SEARCH_TIMEOUT_MS = 3_000;
/** Lets the answer to `cluster.leave` reach the caller before the node stops. */
const LEAVE_STOP_DELAY_MS = 100;
/** How often a handing-over leader looks whether the new leader was heard of. */
const HANDOVER_POLL_MS = 10;

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
  readonly #scheduler: Scheduler;
  /**
   * Aborted once the log adds this node (a learner, or promoted): its join in the
   * background is then done, whatever became of the join request's answer.
   */
  readonly #joinDone = new AbortController();
  /** The `since` that `diskFull` showed for the full disk that began at `sinceMs`. */
  #diskFullSince: { sinceMs: number; since: string } | null = null;
  #stopping: Promise<void> | null = null;
  readonly #abort = new AbortController();
  readonly #removalWatch: RemovalWatch;
  #rediscovery: MemberRediscovery | null = null;
  readonly #promotionPolicy: PromotionPolicy;
  readonly #joins: JoinsInFlight;

  constructor(options: ClusterMemberOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler ?? SYSTEM_SCHEDULER;
    const { config, state } = options;
    const nodeId = config.nodeId;
    this.#promotionPolicy = { votersMax: config.votersMax };
    this.#joins = new JoinsInFlight(this.#promotionPolicy);
    this.directory = new MemberDirectory(nodeId, {
      latest: () => this.raft.status().confState,
      applied: () => state.stateMachine.appliedConfState(),
      revoked: (p2pNodeId) => state.stateMachine.isRevoked(p2pNodeId),
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
    this.#learnKnownMembers();
    this.raft.on({
      appended: (entries) => this.directory.learnFromEntries(entries),
      afterReady: () => this.membership.promoteCaughtUpLearners(),
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

  /** Starts the transport, the Raft loop and the autopilot. */
  start(): void {
    this.#transport.start();
    this.raft.start();
    this.#stopAutopilot = this.#scheduler.every(
      AUTOPILOT_INTERVAL_MS,
      () => this.membership.promoteCaughtUpLearners(),
    );
    this.#removalWatch.start();
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
   * Joins through `--peers` in the background; a failed join stops the node with exit 1.
   * `firstSeed` is a seed search the node started before this member existed;
   * `discoverSeed`, with mDNS on, finds seeds by mDNS (raced against `--peers`).
   */
  joinInBackground(firstSeed?: Promise<Seed>, discoverSeed?: JoinOptions["discoverSeed"]): void {
    const { config, endpoint, joinProgress, metrics, state } = this.#options;
    joinProgress.advance("discovering");
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
    }).then(
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
          return;
        }
        const message = error instanceof JoinRefusedError ? error.message : reasonOf(error);
        log.error("join failed: {message}", { message });
        this.stop("the join failed", 1);
      },
    );
  }

  /**
   * After a restart, records this node's current addresses through the log when they
   * differ from its member record (a restart with another `--bind`), retrying until a
   * leader takes it.
   */
  announceAddressesInBackground(): void {
    const self = this.#options.state.self;
    const known = this.directory.recordOf(self.nodeId);
    if (known !== null && sameAddresses(known, self)) return;
    log.info("addresses changed to {addresses}: announcing them to the cluster", {
      addresses: self.addresses.join(","),
    });
    const attempt = async (): Promise<void> => {
      while (this.#stopping === null) {
        try {
          const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(5_000)]);
          const { index } = this.raft.softState.role === "leader"
            ? await this.membership.announce(self, signal)
            : await this.service.forwardToLeader(ANNOUNCE_RPC, { member: self }, signal);
          log.info("new addresses recorded at index {index}", { index });
          return;
        } catch (error) {
          log.debug("announcing addresses failed, retrying: {error}", { error });
          // Stopping ends the pause at once; the loop then ends.
          await sleepOn(this.#scheduler, {
            durationMs: ANNOUNCE_RETRY_MS,
            signal: this.#abort.signal,
          }).catch(() => {});
        }
      }
    };
    void attempt();
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
    const { voters } = this.raft.status().confState;
    const nodeId = this.#options.config.nodeId;
    if (voters.length === 1 && voters[0] === nodeId) {
      throw new ClusterError(
        "invalid",
        `node ${nodeId} is the last voter; stop it instead of leaving`,
      );
    }
    await this.#handOverLeadership();
    const { index } = this.raft.softState.role === "leader"
      ? await this.membership.remove(nodeId, { force: false, signal })
      : await this.service.forwardToLeader(REMOVE_RPC, { nodeId, force: false }, signal);
    this.#scheduler.after(LEAVE_STOP_DELAY_MS, () => this.stop("left the cluster"));
    return { index };
  }

  /** Stops gracefully: a leader hands over first; then everything is released. Idempotent. */
  stop(reason: string, exitCode = 0): Promise<void> {
    this.#stopping ??= (async () => {
      log.info("stopping: {reason}", { reason });
      if (exitCode === 0) await this.#handOverLeadership();
      this.#abort.abort(new ClusterError("stopping", "the node is stopping"));
      this.#stopAutopilot?.();
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

  /**
   * A leader transfers leadership to its most up-to-date active voter and waits until it
   * hears from the new leader (at most `HANDOVER_TIMEOUT_MS`).
   */
  async #handOverLeadership(): Promise<void> {
    if (this.raft.softState.role !== "leader") return;
    const status = this.raft.status();
    // Voters heard from within an election timeout, not the core's recentActive: check-quorum
    // clears that flag every round, and a stop right after would hand over to nobody.
    const active = this.raft.activePeers();
    const candidates = status.progress
      .filter((peer) => !peer.isLearner && peer.nodeId !== status.id && active.has(peer.nodeId))
      .sort((a, b) => b.matchIndex - a.matchIndex);
    const target = candidates[0];
    if (target === undefined) return;
    try {
      this.raft.transferLeadership(target.nodeId);
    } catch (error) {
      log.warn("could not hand leadership to node {nodeId}: {error}", {
        nodeId: target.nodeId,
        error,
      });
      return;
    }
    log.info("handing leadership to node {nodeId}", { nodeId: target.nodeId });
    // Stepping down is not enough: wait until this node hears from the new leader, so that
    // the cluster has one before this node stops (and stops voting).
    const newLeaderKnown = () =>
      this.raft.softState.role !== "leader" && this.raft.softState.leaderId !== NO_NODE;
    const deadline = this.#scheduler.now() + HANDOVER_TIMEOUT_MS;
    while (
      this.#scheduler.now() < deadline && !newLeaderKnown() && !this.#abort.signal.aborted
    ) {
      await sleepOn(this.#scheduler, { durationMs: HANDOVER_POLL_MS, signal: this.#abort.signal })
        .catch(() => {});
    }
    if (newLeaderKnown()) {
      log.info("node {leaderId} leads now", { leaderId: this.raft.softState.leaderId });
    } else if (this.raft.softState.role === "leader") {
      log.warn("leadership was not taken over within {ms} ms", { ms: HANDOVER_TIMEOUT_MS });
    } else {
      log.warn("stepped down, but no new leader was heard of within {ms} ms", {
        ms: HANDOVER_TIMEOUT_MS,
      });
    }
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
    const nodeId = config.nodeId;
    const askWithLeaderUntilMs = state.start === "restart"
      ? this.#scheduler.now() + RESTART_CHECK_MS
      : 0;
    return new RemovalWatch({
      scheduler: this.#scheduler,
      self: () => {
        const status = this.raft.status();
        const asking = status.leaderId === NO_NODE || this.#scheduler.now() < askWithLeaderUntilMs;
        if (!asking || !isMember(status.confState, nodeId)) return null;
        return {
          nodeId,
          p2pNodeId: endpoint.nodeId,
          clusterId: state.stateMachine.clusterId(),
          lastIndex: status.lastIndex,
        };
      },
      peers: () => {
        const { voters, learners } = this.raft.status().confState;
        return [...voters, ...learners].flatMap((id) => this.directory.addressOf(id) ?? []);
      },
      askStatus: (peer, options) => rpcClient.call(peer, STATUS_RPC, {}, options),
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
