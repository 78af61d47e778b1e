/**
 * `startNode()`: one cluster node, assembled from its parts in the order that keeps a
 * failed start harmless (DESIGN.md sections 1, 3, 6):
 *
 * 1. read the cluster secret, if any; lock the data dir and load (or create) the P2P identity;
 * 2. bind the Iroh endpoint on UDP `--bind` and answer `ping` on `blixard/rpc/1` (with a
 *    secret, also `cluster.challenge` and `cluster.authenticate`, section 8);
 * 3. serve HTTP on TCP bind port + 1000, or `--http-bind` (with a secret, `/bootstrap` is signed);
 * 4. open the Raft storage and decide (DESIGN.md section 6): a data dir with Raft state
 *    restarts as that member; otherwise no `--peers` founds a cluster, and `--peers` joins;
 * 5. start the Raft loop, the Raft transport and the cluster RPC methods (with a secret,
 *    behind the `SecretGate`: members and authenticated callers only); log "ready";
 * 6. a joiner then joins in the background (`/status` shows its progress).
 *
 * With `--mdns`, mDNS starts right after step 2 (advertising and browsing,
 * `src/discovery/`); a new node without `--peers` lets the formation rule decide between
 * founding and joining after step 3, and a joiner races mDNS seeds against `--peers`.
 *
 * Steps 1–3 release everything when a later one fails, and nothing but `identity.key` is
 * written before step 4, so a start that fails on a port or a lock leaves no trace.
 *
 * @module
 */

import { AuthenticatingRpcClient } from "../../auth/authenticate.ts";
import {
  ClusterSecret,
  ClusterSecretError,
  describeClusterSecretSource,
  EmptyClusterSecretError,
  loadClusterSecret,
} from "../../auth/cluster_secret.ts";
import { SecretGate } from "../../auth/secret_gate.ts";
import type { NodeConfig } from "../../config/node_config.ts";
import { reasonOf, StartupError, UsageError } from "../../util/errors.ts";
import { getLogger } from "../../log/logging.ts";
import { NodeMetrics } from "../../http/metrics.ts";
import { startHttpServer } from "../../http/http_server.ts";
import { bootstrapInfoFor } from "../../bootstrap/bootstrap_info.ts";
import { CachedBootstrapSigner } from "../../bootstrap/bootstrap_signature.ts";
import { txtResolverFor } from "../../bootstrap/peer_source.ts";
import { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import type { P2pConnection } from "../../transport/p2p_connection.ts";
import { dialRaft } from "../../transport/raft_transport.ts";
import { RpcClient, RpcServer } from "../../transport/rpc.ts";
import { PING_RPC, pingHandler } from "../../transport/ping_rpc.ts";
import type { TrustCheck } from "../../transport/stranger_limits.ts";
import { openDataDir, restrictMode } from "../local_state/data_dir.ts";
import { loadOrCreateIdentity } from "../local_state/identity.ts";
import { ResourceStack } from "./resource_stack.ts";
import { JoinProgress } from "../join/join_progress.ts";
import { wireEndpointMetrics } from "../status/endpoint_metrics.ts";
import { registerClusterMetrics } from "../status/cluster_metrics.ts";
import { openClusterState, selfMemberInfo, type StartMode } from "../local_state/cluster_state.ts";
import { EarlyStorage } from "../local_state/early_storage.ts";
import { ClusterMember } from "./cluster_member.ts";
import { publicStatusJson, startingStatusJson } from "../status/status_view.ts";
import { startSeedSearch } from "../join/joiner.ts";
import { type ClaimedInvite, claimInvite } from "../join/invite_join.ts";
import { receivedSecretSource, storeReceivedSecret } from "../local_state/secret_fingerprint.ts";
import type { Seed } from "../../bootstrap/bootstrap_client.ts";
import { DATABASE_FILE_NAME } from "../../storage/sqlite_storage.ts";
import { BackupService } from "../../backup/backup_service.ts";
import { checkRestore, restoreDataDir } from "../../backup/restore.ts";
import type { NodeDiscovery } from "../../discovery/node_discovery.ts";
import { SnapshotStreams } from "../../snapshot/snapshot_streams.ts";
import {
  snapshotHttpUrls,
  type SnapshotSettings,
  snapshotSettingsFromEnv,
} from "../../snapshot/snapshot_settings.ts";

const log = getLogger(["blixard", "node"]);

/** How long a stop waits for the Iroh endpoint to close. */
const ENDPOINT_CLOSE_WAIT_MS = 300;
/** Concurrent RPC requests a node serves (clients keep many writes in flight). */
const RPC_CONCURRENT_REQUESTS_MAX = 1024;

/** A running node. */
export interface Node {
  readonly nodeId: number;
  readonly p2pNodeId: string;
  /** Resolves with the process exit code once the node has stopped. */
  readonly finished: Promise<number>;
  /** Stops gracefully; resolves once everything is released. Idempotent. */
  stop(reason: string, exitCode?: number): Promise<void>;
}

/** Starts a node from `config`. Rejects with `StartupError` when it cannot start. */
export async function startNode(config: NodeConfig): Promise<Node> {
  const resources = new ResourceStack();
  try {
    return await assemble(config, resources);
  } catch (error) {
    await resources.releaseAll();
    throw error;
  }
}

async function assemble(config: NodeConfig, resources: ResourceStack): Promise<Node> {
  const startedAtMs = performance.now();
  // mDNS's modules (multicast-dns and the Node-layer modules it requires, about 25 ms of a
  // start's CPU) load only when it is on, and from here: their files are read while the
  // data dir, the identity and the endpoint are set up.
  const mdnsModule = config.mdnsEnabled ? import("../../discovery/node_discovery.ts") : null;
  let snapshotSettings: SnapshotSettings;
  try {
    snapshotSettings = snapshotSettingsFromEnv();
  } catch (error) {
    throw new StartupError((error as Error).message, { cause: error });
  }
  let clusterSecret = await readClusterSecret(config);
  // Computed now: once the HTTP server answers, the start must not yield to the event loop
  // again (a /health 200 tells a supervisor the node is up and may be signalled).
  let secretFingerprint = await clusterSecret?.fingerprint() ?? null;
  // Checked before the data dir is even locked: a bad backup leaves no trace.
  const backup = config.restoreFile === null
    ? null
    : checkRestore(config.restoreFile, config.dataDir);
  const dataDir = await openDataDir(config.dataDir);
  resources.push("data dir lock", () => dataDir.release());
  const identity = await loadOrCreateIdentity(dataDir.path);

  const metrics = new NodeMetrics();
  // Members and keys that proved the secret are trusted; without a secret, everyone is
  // (anyone may join). Strangers are held to the limits of stranger_limits.ts.
  let gate: SecretGate | null = null;
  const isTrusted = (p2pNodeId: string) =>
    clusterSecret === null || gate?.admits(p2pNodeId) === true;
  const endpoint = await bindEndpoint(config, { secretKey: identity.secretKey, isTrusted });
  // Closing waits for native connects in flight (to a dead peer: up to their deadline);
  // the process exits right after a stop, which frees the socket anyway.
  resources.push("P2P endpoint", async () => {
    await boundedWait(endpoint.close(), ENDPOINT_CLOSE_WAIT_MS);
    endpoint.abandonClose();
  });
  wireEndpointMetrics(endpoint, metrics);
  // A ticket's claim waits for the leader to commit the entry that adds this node; the
  // storage is opened in that wait instead of after it (20–50 ms of a join, cold). Not for a
  // restore, which writes the database itself first. A database without Raft state (a join
  // killed before its first entries) is no data dir: this start is a first start again.
  const early = new EarlyStorage(dataDir.path);
  resources.push("storage opened early", () => early.abandon());
  const firstStart = !early.heldRaftState();
  const openStorageEarly = () => {
    if (backup === null) early.open();
  };
  const claimed = await claimInviteOnFirstStart(config, {
    endpoint,
    resources,
    dataDir: dataDir.path,
    firstStart,
    whileWaiting: openStorageEarly,
  });
  // The leader has added this node and is dialling it; this node's Raft is up in tens of
  // ms. Its own connection to the leader's Raft port, opened now, is ready by then, and the
  // leader, told of it, sends the first entries on it at once.
  const leaderDial = claimed === null ? null : dialLeader(endpoint, claimed.invite);
  if (claimed?.secret != null) {
    clusterSecret = claimed.secret;
    secretFingerprint = await claimed.secret.fingerprint();
  }
  // The HTTP routes, the gate and the mDNS advert read `member`, which exists from step 5
  // on; until then the node is starting and knows no members.
  let member: ClusterMember | null = null;
  const mdns = mdnsModule === null ? null : await (await mdnsModule).NodeDiscovery.start(config, {
    endpoint,
    clusterSecret,
    metrics,
    clusterId: () => member?.status().cluster_id ?? null,
  });
  let backups: BackupService | null = null;
  if (mdns !== null) resources.push("mDNS", () => mdns.stop());
  const discoverSeed = mdns === null
    ? undefined
    : (timeoutMs: number, signal: AbortSignal) => mdns.discoverSeed(timeoutMs, signal);
  const joinProgress = new JoinProgress(null);
  const seedSearch = { endpoint, clusterSecret, metrics, joinProgress, resources, discoverSeed };
  const earlySeed = startEarlySeedSearch(config, { ...seedSearch, firstStart, mdnsJoin: false });
  const rpcServer = new RpcServer({
    concurrentRequestsMax: RPC_CONCURRENT_REQUESTS_MAX,
    isTrusted,
  });
  rpcServer.register(PING_RPC, pingHandler({ nodeId: config.nodeId, p2pNodeId: endpoint.nodeId }));
  gate = clusterSecret === null ? null : new SecretGate({
    secret: clusterSecret,
    selfP2pNodeId: endpoint.nodeId,
    isMember: (p2pNodeId) => member !== null && member.directory.memberIdOf(p2pNodeId) !== null,
    isRevoked: (p2pNodeId) => member !== null && member.directory.isRevoked(p2pNodeId),
    onLogLineSuppressed: () => metrics.recordLogLineSuppressed("secret_refused"),
  });
  gate?.register(rpcServer);
  rpcServer.serve(endpoint);

  // Decided before the HTTP server answers: from then on the start does not yield.
  const mdnsJoin = await decideMdnsStart(config, {
    mdns,
    resources,
    firstStart,
    whileWaiting: openStorageEarly,
  });
  const firstSeed = earlySeed ??
    startEarlySeedSearch(config, { ...seedSearch, firstStart, mdnsJoin });
  const status = () => member?.status() ?? startingStatusJson(config.nodeId, joinProgress.toJson());
  const bootstrapSigner = clusterSecret === null ? null : new CachedBootstrapSigner(clusterSecret);
  const http = await startHttpServer({
    hostname: config.httpHost,
    port: config.httpPort,
    metrics,
    routes: {
      bootstrap: () => {
        const current = status();
        const info = bootstrapInfoFor(endpoint, {
          nodeId: config.nodeId,
          clusterId: current.cluster_id,
          leaderId: current.leader_id,
        });
        return bootstrapSigner === null ? info : bootstrapSigner.sign(info);
      },
      // With a secret, strangers see no more than they need (status_view.ts); the whole
      // document stays behind the gate, on cluster.status. What mDNS sees is shown, without
      // keys and addresses when there is a secret.
      status: () => {
        const shown = clusterSecret === null ? status() : publicStatusJson(status());
        if (mdns === null) return shown;
        return { ...shown, mdns: mdns.discovery.statusJson({ withKeys: clusterSecret === null }) };
      },
      isServing: () => member?.isServing ?? true,
      diskFullSince: () => member?.diskFull?.since ?? null,
      backup: (backupId, from) => backups?.stream(backupId, from) ?? null,
    },
  });
  resources.push("HTTP server", () => http.shutdown());

  if (backup !== null) {
    restoreDataDir(backup, {
      dataDirPath: dataDir.path,
      self: selfMemberInfo(config.nodeId, endpoint),
    });
  }
  const state = openClusterState(config, {
    dataDirPath: dataDir.path,
    endpoint,
    secretFingerprint,
    mdnsJoin,
    storage: early.handOver(),
  });
  resources.push("storage", () => state.storage.close());
  restrictDatabaseModes(dataDir.path, state.start);
  // Members admit each other without a proof; the secret is for a node a member does not
  // know (yet, or any more), e.g. a removed node asking whether it still is one.
  const rpcClient = clusterSecret === null
    ? new RpcClient(endpoint)
    : new AuthenticatingRpcClient(endpoint, {
      secret: clusterSecret,
      // Fellow members are trusted by key, as Raft trusts them; anyone else proves the secret.
      isKnownMember: (p2pNodeId) =>
        member !== null && member.directory.memberIdOf(p2pNodeId) !== null,
    });
  resources.push("RPC client", () => rpcClient.close());
  let snapshots: SnapshotStreams | null = null;
  member = new ClusterMember({
    config,
    clusterSecret,
    endpoint,
    state,
    rpcClient,
    joinProgress,
    metrics,
    onStop: () => resources.releaseAll(),
    ...(snapshotSettings.intervalEntries === undefined
      ? {}
      : { snapshotIntervalEntries: snapshotSettings.intervalEntries }),
    takeMessage: (message) => snapshots?.receive(message) === true,
  });
  member.service.register(gate?.guard(rpcServer) ?? rpcServer);
  member.service.registerOpen(rpcServer);
  backups = new BackupService({
    nodeId: config.nodeId,
    storage: state.storage,
    stateMachine: state.stateMachine,
    raft: member.raft,
  });
  backups.register(gate?.guard(rpcServer) ?? rpcServer);
  resources.push("backups", () => backups?.close());
  snapshots = new SnapshotStreams({
    storage: state.storage,
    images: backups,
    send: (messages) => member?.sendRaftMessages(messages),
    step: (message) => member?.raft.step(message),
    report: (nodeId, ok) => member?.raft.reportSnapshot(nodeId, ok),
    httpUrls: () =>
      snapshotHttpUrls({ host: config.httpHost, port: http.port }, endpoint.addresses()),
    ...(snapshotSettings.chunkBytes === undefined
      ? {}
      : { chunkBytes: snapshotSettings.chunkBytes }),
  });
  member.raft.useSnapshotTransport(snapshots);
  member.raft.on({ afterReady: () => snapshots?.readyHandled() });
  resources.push("snapshots", () => snapshots?.close());
  const { observeJoinPhase } = registerClusterMetrics(metrics, {
    status,
    raft: () => member?.raft ?? null,
  });
  joinProgress.onPhase((phase, elapsedMs) => observeJoinPhase(phase, elapsedMs));
  // A founder's cluster id is what joiners found by mDNS wait for: advertise it at once
  // (a restart's is known now; a new node's once applied).
  mdns?.discovery.advertiseClusterIdOnceApplied(member.raft);
  member.start();
  mdns?.discovery.refreshNow();

  log.info(
    "ready node_id={nodeId} p2p_node_id={p2pNodeId} udp={udp} advertised={advertised} " +
      "http={http} ({start}) in {startMs} ms",
    {
      nodeId: config.nodeId,
      p2pNodeId: endpoint.nodeId,
      udp: endpoint.boundSockets().join(","),
      advertised: endpoint.addresses().join(","),
      http: joinHostPort(config.httpHost, http.port),
      start: state.start,
      startMs: Math.round(performance.now() - startedAtMs),
    },
  );
  if (state.start === "join" && claimed !== null) {
    member.joinedByInvite(claimed.invite, leaderDial);
  } else if (state.start === "join") member.joinInBackground(firstSeed ?? undefined, discoverSeed);
  if (state.start === "restart") {
    member.announceAddressesInBackground();
    member.rediscoverMembersInBackground();
  }
  const secretSource = config.clusterSecret ?? receivedSecretSource(config.dataDir);
  if (secretSource !== null) {
    log.info(
      "cluster secret from {source}: /bootstrap is signed, and callers that are not members " +
        "must prove the secret",
      { source: describeClusterSecretSource(secretSource) },
    );
  } else if (state.start !== "restart") {
    log.warn(
      "no --cluster-secret-file: anyone who can reach this node's ports may join the cluster",
    );
  }
  return {
    nodeId: config.nodeId,
    p2pNodeId: endpoint.nodeId,
    finished: member.finished,
    stop: (reason, exitCode) => member!.stop(reason, exitCode),
  };
}

/**
 * With mDNS on and no `--peers`, a new node asks the formation rule whether to found or to
 * join (`--bootstrap-expect`, `--discovery-wait`); `true` means join. A restart, or a node
 * with `--peers` or without mDNS, does not ask.
 */
async function decideMdnsStart(
  config: NodeConfig,
  context: {
    mdns: NodeDiscovery | null;
    resources: ResourceStack;
    firstStart: boolean;
    /**
     * Called once when the rule first waits for the other nodes of `--bootstrap-expect`:
     * the storage is opened in that wait (the others' first probes come 0-250 ms after
     * their start), not after it, on the path of the founder and of the joiners waiting
     * for its cluster. Not for a join into a running cluster: its first answer comes
     * within tens of ms, and an open in front of it would delay the join.
     */
    whileWaiting: () => void;
  },
): Promise<boolean> {
  const { mdns } = context;
  if (mdns === null || config.peers.length > 0 || config.joinTicket !== null) return false;
  if (!context.firstStart) return false;
  const abort = new AbortController();
  context.resources.push("mDNS formation", () => abort.abort(new Error("the node stopped")));
  let waited = false;
  try {
    const start = await mdns.decideStart({
      signal: abort.signal,
      onWait: (reason) => {
        log.info("mDNS: waiting: {reason}", { reason });
        if (!waited && config.discovery.bootstrapExpect !== null) context.whileWaiting();
        waited = true;
      },
    });
    return start === "join";
  } catch (error) {
    if (abort.signal.aborted) throw error;
    throw new StartupError(reasonOf(error), { cause: error });
  }
}

/**
 * A node started with `--join TICKET` and an empty data dir presents the ticket before it
 * opens its storage (`invite_join.ts`), and keeps the cluster's secret it receives in its
 * data dir. Returns the cluster's answer (this node is a learner now) with that secret
 * (`null` when the cluster has none), or `null` when nothing was presented: on a restart,
 * and when the data dir already holds a received secret (the ticket was presented by an
 * earlier start, which stopped before it had joined; the ordinary join follows then).
 */
async function claimInviteOnFirstStart(
  config: NodeConfig,
  context: {
    endpoint: P2pEndpoint;
    resources: ResourceStack;
    dataDir: string;
    /** The data dir holds no Raft state (`EarlyStorage.heldRaftState`). */
    firstStart: boolean;
    whileWaiting: () => void;
  },
): Promise<{ invite: ClaimedInvite; secret: ClusterSecret | null } | null> {
  const ticket = config.joinTicket;
  if (ticket === null || !context.firstStart) return null;
  if (receivedSecretSource(context.dataDir) !== null) return null;
  const abort = new AbortController();
  context.resources.push("invite claim", () => abort.abort(new Error("the node stopped")));
  let claimed;
  try {
    claimed = await claimInvite(ticket, {
      endpoint: context.endpoint,
      self: selfMemberInfo(config.nodeId, context.endpoint),
      joinTimeoutMs: config.joinTimeoutMs,
      signal: abort.signal,
      whileWaiting: context.whileWaiting,
    });
  } catch (error) {
    if (abort.signal.aborted) throw error;
    throw new StartupError(reasonOf(error), { cause: error });
  }
  if (claimed.secret === null) return { invite: claimed, secret: null };
  storeReceivedSecret(context.dataDir, claimed.secret);
  return {
    invite: claimed,
    secret: await ClusterSecret.fromBytes(claimed.secret, { shareable: true }),
  };
}

/**
 * A Raft connection to the leader that admitted this node, or `null` when it cannot be
 * made (the member then greets its leader the usual way). A start that fails closes it
 * with the endpoint.
 */
function dialLeader(endpoint: P2pEndpoint, claimed: ClaimedInvite): Promise<P2pConnection | null> {
  const leader = claimed.members.find((member) => member.nodeId === claimed.leaderId);
  if (leader === undefined) return Promise.resolve(null);
  return dialRaft(endpoint, leader).catch((error) => {
    log.debug("cannot dial leader {leaderId} early: {error}", { leaderId: leader.nodeId, error });
    return null;
  });
}

/**
 * The cluster secret, read before anything is written: a secret that cannot be read stops
 * the start with one line naming the file (never the secret) and what to do. Without
 * `--cluster-secret-file`, a secret received with an invite ticket is read from the data dir.
 */
async function readClusterSecret(config: NodeConfig): Promise<ClusterSecret | null> {
  const source = config.clusterSecret ?? receivedSecretSource(config.dataDir);
  if (source === null) return null;
  try {
    // Shareable: a joiner admitted by an invite ticket is handed it (invite_service.ts).
    return await loadClusterSecret(source, { shareable: true });
  } catch (error) {
    if (error instanceof EmptyClusterSecretError) throw new UsageError(error.message);
    if (error instanceof ClusterSecretError) {
      throw new StartupError(error.message, { cause: error });
    }
    throw error;
  }
}

async function bindEndpoint(
  config: NodeConfig,
  options: { secretKey: Uint8Array; isTrusted: TrustCheck },
): Promise<P2pEndpoint> {
  const bindAddress = joinHostPort(config.bindHost, config.bindPort);
  try {
    return await P2pEndpoint.bind({
      ...options,
      bindAddress,
      relayUrl: config.relayUrl,
      advertiseAddresses: config.advertiseAddresses,
    });
  } catch (error) {
    // The endpoint's message names the UDP address and the cause; say which flag sets it.
    throw new StartupError(`--bind ${bindAddress}: ${reasonOf(error)}`, { cause: error });
  }
}

/**
 * A node that will join (it has `--peers`, or mDNS found it a cluster to join, and no
 * database yet, so it cannot be a restart) starts looking for its seed at once: with
 * `--peers` as soon as its endpoint is bound, so that the `/bootstrap` fetch, the Iroh
 * connect and the ping overlap opening the storage and the HTTP server, which is about a
 * tenth of the join here. Aborted if the start fails or the node stops first.
 */
function startEarlySeedSearch(
  config: NodeConfig,
  context: {
    endpoint: P2pEndpoint;
    clusterSecret: ClusterSecret | null;
    metrics: NodeMetrics;
    joinProgress: JoinProgress;
    resources: ResourceStack;
    discoverSeed: ((timeoutMs: number, signal: AbortSignal) => Promise<Seed>) | undefined;
    /** The data dir holds no Raft state (`EarlyStorage.heldRaftState`). */
    firstStart: boolean;
    /** The formation rule chose to join a cluster found by mDNS. */
    mdnsJoin: boolean;
  },
): Promise<Seed> | null {
  if (config.peers.length === 0 && !context.mdnsJoin) return null;
  if (!context.firstStart) return null;
  const abort = new AbortController();
  context.resources.push("early seed search", () => abort.abort(new Error("the node stopped")));
  context.joinProgress.advance("discovering");
  const search = startSeedSearch({
    peers: config.peers,
    endpoint: context.endpoint,
    clusterSecret: context.clusterSecret,
    resolveTxt: txtResolverFor(config.dnsServer),
    onBootstrapEvent: (event) => {
      context.metrics.recordBootstrapFetch(event.outcome);
      if (event.reason !== null) context.joinProgress.failed(event.message);
    },
    signal: abort.signal,
    ...(context.discoverSeed === undefined ? {} : { discoverSeed: context.discoverSeed }),
  }, config.joinTimeoutMs);
  // The join consumes it; until then (or if the start fails) nobody else awaits it.
  search.catch(() => {});
  return search;
}

/**
 * `blixard.db` and its WAL files hold every key and value: owner only. SQLite creates them
 * under the umask (usually 0644), and earlier versions left them so: narrowed, not refused,
 * with a warning when an existing file was open to others.
 */
function restrictDatabaseModes(dataDir: string, start: StartMode): void {
  for (const suffix of ["", "-wal", "-shm"]) {
    const path = `${dataDir}/${DATABASE_FILE_NAME}${suffix}`;
    const previous = restrictMode(path, 0o600);
    if (previous !== null && start === "restart") {
      log.warn("{path} was accessible to group or others (mode {mode}): made it 0600", {
        path,
        mode: previous,
      });
    }
  }
}

/** Waits for `work`, but no longer than `waitMs`. */
function boundedWait(work: Promise<void>, waitMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<void>((resolve) => timer = setTimeout(resolve, waitMs));
  return Promise.race([work, elapsed]).finally(() => clearTimeout(timer));
}

/** `host:port`, with IPv6 hosts in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
