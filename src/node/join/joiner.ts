/**
 * The joiner's side of DESIGN.md section 6: find a seed (`/bootstrap` over HTTP, an Iroh
 * connection that reaches the advertised key, `ping`), learn the members from it, and ask
 * to be added. The node's Raft loop and transport already run, so the leader can replicate
 * to this node the moment it appends the change; the seed's member list lets the leader's
 * connection in before this node's own log names it.
 *
 * With a cluster secret (DESIGN.md section 8), the seed's `/bootstrap` must be signed with
 * it, and the joiner proves the secret to the seed over the P2P connection before it asks
 * anything else.
 *
 * Errors that retrying cannot fix end the join at once: the id is taken by another key,
 * the seed wants a secret this node does not have, or refuses the one it has. The others
 * are retried, seed search included, with capped exponential backoff and jitter until
 * `--join-timeout`. An answer that is unsigned or signed with another secret is one of
 * those: the joiner cannot tell a wrong secret from a man in the middle, and another peer
 * may answer honestly.
 *
 * A leader busy with a join storm answers `busy` with how long its queue should take: the
 * joiner waits that long, plus jitter, and asks again on the same connection, with no new
 * seed search (each would fetch `/bootstrap` again).
 *
 * @module
 */

import { SECRET_REFUSED, SERVER_UNPROVEN, UNAUTHENTICATED } from "../../auth/auth_rpcs.ts";
import { authenticate, type RpcCall } from "../../auth/authenticate.ts";
import type { ClusterSecret } from "../../auth/cluster_secret.ts";
import {
  connectSeed,
  networkReach,
  searchSeeds,
  type Seed,
  type SeedConnection,
  type SeedReach,
} from "../../bootstrap/bootstrap_client.ts";
import type { InviteTicket } from "../../bootstrap/invite_ticket.ts";
import type { BootstrapEvent } from "../../bootstrap/bootstrap_client.ts";
import { SeedNotFoundError } from "../../bootstrap/bootstrap_error.ts";
import { type BootstrapInfo, BootstrapInfoSchema } from "../../bootstrap/bootstrap_info.ts";
import type { TxtResolver } from "../../bootstrap/peer_source.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import type { NodeId } from "../../raft/types.ts";
import { JOIN_RPC, STATUS_RPC } from "../../transport/cluster_rpcs.ts";
import type { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import { callRpc, RpcError } from "../../transport/rpc.ts";
import { getLogger } from "../../log/logging.ts";
import { sleepOn } from "../../util/sleep.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../../util/scheduler.ts";
import { backoffMs } from "../../util/backoff.ts";
import { busyPauseMs, RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS } from "./join_pause.ts";
import type { JoinProgress } from "./join_progress.ts";
import { type MemberDirectory, membersOfStatus } from "../membership/member_directory.ts";

const log = getLogger(["blixard", "join"]);

/** Deadline of one join request; the leader answers once the change is committed. */
const JOIN_REQUEST_TIMEOUT_MS = 10_000;
/** Deadline of the status request that lists the members, and of authenticating. */
const STATUS_REQUEST_TIMEOUT_MS = 3_000;
/**
 * Pauses between seed-search rounds. The nodes of a new cluster often start together, so
 * the first rounds come quickly, and the cap keeps a joiner from sleeping long after its
 * seed came up: a round is one small HTTP request per peer.
 */
const SEED_BACKOFF_MIN_MS = 25;
const SEED_BACKOFF_MAX_MS = 250;

/** A join that cannot succeed by retrying: the message says what to change. */
export class JoinRefusedError extends Error {
  override name = "JoinRefusedError";
}

/** What a successful join returns. */
export interface JoinOutcome {
  clusterId: string | null;
  leaderId: number;
  /** The seed, as written in `--peers`. */
  peer: string;
}

/** Options of {@linkcode joinCluster}. */
export interface JoinOptions {
  peers: readonly string[];
  endpoint: P2pEndpoint;
  self: MemberInfo;
  directory: MemberDirectory;
  progress: JoinProgress;
  joinTimeoutMs: number;
  /** The cluster secret, or `null` for none. */
  clusterSecret: ClusterSecret | null;
  onBootstrapEvent?: (event: BootstrapEvent) => void;
  signal?: AbortSignal;
  /** TXT lookups for `dns:NAME` peers (`--dns-server`; default: the system's resolver). */
  resolveTxt?: TxtResolver;
  /** The clock of the join's deadline and of the pauses between attempts; the system's by default. */
  scheduler?: Scheduler;
  /**
   * A seed search started earlier (see `startSeedSearch`), used for the first attempt: the
   * node starts looking for a seed while it still opens its storage and HTTP server.
   */
  firstSeed?: Promise<Seed>;
  /**
   * Finds a seed by mDNS (`findSeedByMdns`), raced against the `--peers` search; the first
   * verified seed wins. Absent when mDNS is off.
   */
  discoverSeed?: (timeoutMs: number, signal: AbortSignal) => Promise<Seed>;
  /** `--join TICKET`: its members are dialled by key, raced against the other searches. */
  ticket?: InviteTicket | null;
}

/** The options a seed search needs; a subset of `JoinOptions`. */
export type SeedSearchOptions = Pick<
  JoinOptions,
  | "peers"
  | "endpoint"
  | "clusterSecret"
  | "onBootstrapEvent"
  | "signal"
  | "resolveTxt"
  | "discoverSeed"
  | "ticket"
>;

/**
 * Starts looking for a seed now, for at most `timeoutMs`, as the join will: through
 * `--peers`, and by mDNS when `discoverSeed` is given, whichever verifies a seed first.
 */
export function startSeedSearch(options: SeedSearchOptions, timeoutMs: number): Promise<Seed> {
  const searches: ((signal: AbortSignal) => Promise<Seed>)[] = [];
  if (options.peers.length > 0) {
    const reach = networkReach(options.endpoint);
    searches.push((signal) => searchPeers({ ...options, signal }, timeoutMs, reach));
  }
  const discoverSeed = options.discoverSeed;
  if (discoverSeed !== undefined) searches.push((signal) => discoverSeed(timeoutMs, signal));
  const ticket = options.ticket;
  if (ticket != null) {
    searches.push((signal) =>
      findTicketSeed(ticket, { endpoint: options.endpoint, timeoutMs, signal })
    );
  }
  return raceSeedSearches(searches, options.signal);
}

/**
 * The `--peers` search of `startSeedSearch` (rounds over every peer, paced for nodes that
 * start together), reaching them through `reach`: the simulator's joiners search by it.
 */
export function searchPeers<Connection extends SeedConnection>(
  options:
    & Pick<SeedSearchOptions, "peers" | "clusterSecret" | "onBootstrapEvent" | "resolveTxt">
    & { signal: AbortSignal; random?: () => number },
  timeoutMs: number,
  reach: SeedReach<Connection>,
): Promise<Seed<Connection>> {
  return searchSeeds([...options.peers], {
    joinTimeoutMs: timeoutMs,
    backoffInitialMs: SEED_BACKOFF_MIN_MS,
    backoffMaxMs: SEED_BACKOFF_MAX_MS,
    clusterSecret: options.clusterSecret,
    ...(options.onBootstrapEvent === undefined ? {} : { onEvent: options.onBootstrapEvent }),
    signal: options.signal,
    ...(options.resolveTxt === undefined ? {} : { resolveTxt: options.resolveTxt }),
    ...(options.random === undefined ? {} : { random: options.random }),
  }, reach);
}

/** Deadline of one attempt at one ticket member. */
const TICKET_ATTEMPT_TIMEOUT_MS = 3_000;

/**
 * Connects to one of `ticket`'s members by its key (no HTTP: the ticket is its own
 * `/bootstrap` answer, and no ping: the key is the check), all of them at once, in rounds
 * until `timeoutMs`. Rejects with `TicketMembersGoneError` naming each member's last
 * failure, and saying that the members the ticket lists may all be gone.
 */
async function findTicketSeed(
  ticket: InviteTicket,
  options: { endpoint: P2pEndpoint; timeoutMs: number; signal: AbortSignal },
): Promise<Seed> {
  const deadlineMs = performance.now() + options.timeoutMs;
  const failures = new Map<number, string>();
  for (let round = 0;; round++) {
    const attempts = ticket.members.map((member) => async (signal: AbortSignal) => {
      const info = {
        node_id: member.nodeId,
        p2p_node_id: member.p2pNodeId,
        p2p_addresses: member.addresses,
        p2p_relay_url: member.relayUrl,
        cluster_id: ticket.clusterId,
      };
      try {
        return await connectSeed(info, `ticket member ${member.nodeId}`, {
          endpoint: options.endpoint,
          deadlineMs: Math.min(deadlineMs, performance.now() + TICKET_ATTEMPT_TIMEOUT_MS),
          signal,
          advertisedBy: "the ticket",
          // The ticket pins each member's key and id: the first member to connect is the
          // seed, with no ping (its round trip and its cold code on a new joiner).
          ping: false,
        });
      } catch (error) {
        failures.set(member.nodeId, error instanceof Error ? error.message : String(error));
        throw error;
      }
    });
    try {
      return await raceSeedSearches(attempts, options.signal);
    } catch (error) {
      options.signal.throwIfAborted();
      if (performance.now() >= deadlineMs) throw ticketMembersGone(ticket, failures, error);
    }
    await sleepOn(SYSTEM_SCHEDULER, {
      durationMs: Math.min(
        backoffMs(round, { initialMs: SEED_BACKOFF_MIN_MS, maxMs: SEED_BACKOFF_MAX_MS }),
        Math.max(0, deadlineMs - performance.now()),
      ),
      signal: options.signal,
    });
  }
}

/** No member an invite ticket lists answered within the join timeout. */
export class TicketMembersGoneError extends Error {
  override name = "TicketMembersGoneError";
}

function ticketMembersGone(
  ticket: InviteTicket,
  failures: Map<number, string>,
  cause: unknown,
): TicketMembersGoneError {
  const each = ticket.members.map((member) =>
    `node ${member.nodeId} (${member.addresses.join(",") || member.relayUrl}): ${
      failures.get(member.nodeId) ?? "no answer"
    }`
  ).join("; ");
  return new TicketMembersGoneError(
    `none of the ${ticket.members.length} members the ticket lists answered (${each}): ` +
      "they may all have left cluster " + ticket.clusterId + " or be down; ask a current " +
      "member for a new ticket (blixard cluster invite)",
    { cause },
  );
}

/**
 * The seed of whichever search finds one first; the others are aborted, and a seed one of
 * them found anyway is closed. Rejects with the first search's error when all fail.
 */
async function raceSeedSearches(
  searches: ((signal: AbortSignal) => Promise<Seed>)[],
  signal: AbortSignal | undefined,
): Promise<Seed> {
  if (searches.length === 0) throw new RangeError("a seed search needs --peers or mDNS");
  const lost = new AbortController();
  const combined = signal === undefined ? lost.signal : AbortSignal.any([signal, lost.signal]);
  const running = searches.map((search) => search(combined));
  let winner: Seed | null = null;
  try {
    winner = await Promise.any(running);
    return winner;
  } catch (error) {
    throw error instanceof AggregateError ? error.errors[0] : error;
  } finally {
    lost.abort(new Error("another seed search found a seed first"));
    for (const search of running) {
      search.then((seed) => {
        if (seed !== winner) seed.connection.close("another seed answered first");
      }, () => {});
    }
  }
}

/** Joins the cluster of one of `peers`, or rejects after the join timeout. */
export function joinCluster(options: JoinOptions): Promise<JoinOutcome> {
  const connect: JoinPolicyOptions["connect"] = async (info, peer, connectOptions) =>
    seedLinkOf(await connectSeed(info, peer, { ...connectOptions, endpoint: options.endpoint }));
  return joinThrough({ ...options, connect }, async (remainingMs, attempt) => {
    const seed = attempt === 0 && options.firstSeed !== undefined
      ? await options.firstSeed
      : await startSeedSearch(options, remainingMs);
    return seedLinkOf(seed);
  });
}

/**
 * A seed as the join talks to it: who it is, and how to call it. In production it is a
 * `Seed`'s Iroh connection (`seedLinkOf`); the simulator's rides its simulated network.
 */
export interface SeedLink {
  /** The peer as written in `--peers`. */
  peer: string;
  /** The seed's node id, as it advertised it. */
  nodeId: NodeId;
  /** The key the link reaches. */
  p2pNodeId: string;
  /** The connection's path (`direct`, `relay`), for the log. */
  path(): string;
  /** One call over the link. */
  call: RpcCall;
  /** Closes the link; the join owns it. */
  close(reason: string): void;
}

/** The link of a seed found over Iroh: calls on its connection. */
export function seedLinkOf(seed: Seed): SeedLink {
  const { connection } = seed;
  return {
    peer: seed.peer,
    nodeId: seed.info.node_id,
    p2pNodeId: connection.remoteNodeId,
    path: () => connection.path(),
    call: (definition, request, options) => callRpc(connection, definition, request, options),
    close: (reason) => connection.close(reason),
  };
}

/** What the join's policy needs, apart from how it finds seeds. */
export type JoinPolicyOptions =
  & Pick<
    JoinOptions,
    "self" | "joinTimeoutMs" | "clusterSecret" | "signal" | "scheduler"
  >
  & {
    /** Told of each phase the join reaches and of each failed attempt. */
    progress: Pick<JoinProgress, "advance" | "failed">;
    /** Learns the members the seed names, so that the leader's connection gets in. */
    directory: Pick<MemberDirectory, "rememberProvisional">;
    /** Uniform in [0, 1): the jitter of the pauses (default `Math.random`). */
    random?: () => number;
    /** Connects to a leader a seed named, checked as a seed is (`connectSeed`). */
    connect(
      info: BootstrapInfo,
      peer: string,
      options: { deadlineMs: number; signal: AbortSignal; advertisedBy: string },
    ): Promise<SeedLink>;
  };

/**
 * Finds a seed for attempt `attempt` (0 for the first) within `remainingMs`; rejects with
 * `SeedNotFoundError` when none answered in time.
 */
export type SeedSearch = (remainingMs: number, attempt: number) => Promise<SeedLink>;

/**
 * The join's policy (`joinCluster`), with the seed search given: each attempt finds a seed,
 * asks it (`busy` on the same link), and retries what retrying may fix, with capped
 * exponential backoff, until the join timeout. The simulator joins through it with a
 * search over its own network.
 */
export async function joinThrough(
  options: JoinPolicyOptions,
  searchSeed: SeedSearch,
): Promise<JoinOutcome> {
  const clock = options.scheduler ?? SYSTEM_SCHEDULER;
  const deadlineMs = clock.now() + options.joinTimeoutMs;
  /** Why the last join request failed, once a seed was found. */
  let lastJoinError: string | null = null;
  for (let attempt = 0;; attempt++) {
    const remainingMs = Math.floor(deadlineMs - clock.now());
    if (remainingMs <= 0) throw joinTimeoutError(options, lastJoinError);
    let seed: SeedLink;
    try {
      seed = await searchSeed(remainingMs, attempt);
    } catch (error) {
      // A search that ran into the join's deadline after seeds were found and the join
      // failed: the join's failure explains the outcome, not the last moments of the search.
      if (error instanceof SeedNotFoundError && lastJoinError !== null) {
        throw joinTimeoutError(options, lastJoinError);
      }
      throw error;
    }
    try {
      return await requestJoin(seed, options, deadlineMs);
    } catch (error) {
      if (error instanceof JoinRefusedError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      // A request cut short by the join's own deadline does not explain why the join failed.
      if (lastJoinError === null || clock.now() < deadlineMs) lastJoinError = message;
      options.progress.failed(message);
      log.warn("join through {peer} failed, retrying: {message}", { peer: seed.peer, message });
      await sleepOn(clock, {
        durationMs: backoffMs(attempt, {
          initialMs: RETRY_BACKOFF_MIN_MS,
          maxMs: RETRY_BACKOFF_MAX_MS,
          random: options.random ?? Math.random,
        }),
        signal: options.signal,
      });
    } finally {
      seed.close("join finished");
    }
  }
}

async function requestJoin(
  seed: SeedLink,
  options: JoinPolicyOptions,
  deadlineMs: number,
): Promise<JoinOutcome> {
  options.progress.advance("connected");
  log.info("connected to seed {peer} (node {seedId}, {path} path)", {
    peer: seed.peer,
    seedId: seed.nodeId,
    path: seed.path(),
  });
  const timeout = (capMs: number) =>
    Math.max(
      1,
      Math.min(capMs, Math.floor(deadlineMs - (options.scheduler ?? SYSTEM_SCHEDULER).now())),
    );
  try {
    return await askToJoin(seed, options, timeout);
  } catch (error) {
    throw refusal(error, seed, options) ?? error;
  }
}

/** Authenticate (with a secret), learn the members, ask to join. */
async function askToJoin(
  seed: SeedLink,
  options: JoinPolicyOptions,
  timeout: (capMs: number) => number,
): Promise<JoinOutcome> {
  await proveSecret(seed, options, timeout);
  const status = await seed.call(STATUS_RPC, {}, {
    timeoutMs: timeout(STATUS_REQUEST_TIMEOUT_MS),
    ...abortedBy(options.signal),
  });
  options.directory.rememberProvisional(membersOfStatus(status));
  options.progress.advance("joining");
  const answer = await askUntilAdmitted(seed, options, timeout).catch((error) => {
    if (!(error instanceof RpcError) || error.code !== "not_leader") throw error;
    return askNamedLeader(seed, options, timeout, error);
  });
  options.directory.rememberProvisional(answer.members);
  options.progress.advance("learner");
  log.info("joined cluster {clusterId} as a learner through {peer}; leader is node {leaderId}", {
    clusterId: answer.clusterId,
    peer: seed.peer,
    leaderId: answer.leaderId,
  });
  return { clusterId: answer.clusterId, leaderId: answer.leaderId, peer: seed.peer };
}

/** With a cluster secret: the mutual proof on `seed`'s connection, before anything else. */
async function proveSecret(
  seed: SeedLink,
  options: JoinPolicyOptions,
  timeout: (capMs: number) => number,
): Promise<void> {
  if (options.clusterSecret === null) return;
  await authenticate(seed.call, {
    secret: options.clusterSecret,
    callerP2pNodeId: options.self.p2pNodeId,
    serverP2pNodeId: seed.p2pNodeId,
    timeoutMs: timeout(STATUS_REQUEST_TIMEOUT_MS),
    signal: options.signal,
  });
  options.progress.advance("authenticated");
  log.info("proved the cluster secret to seed {peer}", { peer: seed.peer });
}

/**
 * A follower forwards a join to its leader unless the caller is a member already, which
 * it answers `not_leader` (a member's request was forwarded once, and must not loop). A
 * joiner is one when an earlier request of its own added it and the answer was lost:
 * asking the follower again can only get `not_leader` again. So the joiner asks the
 * leader that the follower names in its status, over a connection checked like a seed's
 * (its key, `ping`, the secret's mutual proof). Rejects with `refusal` when the follower
 * names no other leader.
 */
async function askNamedLeader(
  seed: SeedLink,
  options: JoinPolicyOptions,
  timeout: (capMs: number) => number,
  refusal: RpcError,
) {
  const status = await seed.call(STATUS_RPC, {}, {
    timeoutMs: timeout(STATUS_REQUEST_TIMEOUT_MS),
    ...abortedBy(options.signal),
  });
  const named = status.members.find((member) =>
    member.node_id === status.leader_id && member.node_id !== seed.nodeId
  );
  const info = BootstrapInfoSchema.safeParse({
    node_id: named?.node_id,
    p2p_node_id: named?.p2p_node_id,
    p2p_addresses: named?.p2p_addresses,
    p2p_relay_url: named?.p2p_relay_url,
    cluster_id: status.cluster_id,
  });
  if (!info.success) throw refusal;
  log.info("seed {peer} is a follower and counts this node a member: asking leader {leaderId}", {
    peer: seed.peer,
    leaderId: info.data.node_id,
  });
  const leader = await options.connect(
    info.data,
    `leader ${info.data.node_id} named by ${seed.peer}`,
    {
      deadlineMs: (options.scheduler ?? SYSTEM_SCHEDULER).now() +
        timeout(STATUS_REQUEST_TIMEOUT_MS),
      signal: options.signal ?? new AbortController().signal,
      advertisedBy: `the status of node ${seed.nodeId}`,
    },
  );
  try {
    await proveSecret(leader, options, timeout);
    return await askUntilAdmitted(leader, options, timeout);
  } finally {
    leader.close("join finished");
  }
}

/**
 * `cluster.join`, asked again on the same connection while the leader answers `busy`,
 * after the pause it asks for (stretched by jitter) or, when it names none, the joiner's
 * own backoff. Gives up with the last `busy` when the pause would pass the join's deadline.
 */
async function askUntilAdmitted(
  seed: SeedLink,
  options: JoinPolicyOptions,
  timeout: (capMs: number) => number,
) {
  let lastBusy: RpcError | null = null;
  for (let attempt = 0;; attempt++) {
    try {
      return await seed.call(JOIN_RPC, { member: options.self }, {
        timeoutMs: timeout(JOIN_REQUEST_TIMEOUT_MS),
        ...abortedBy(options.signal),
      });
    } catch (error) {
      // A retry cut short by the join's own deadline: the busy leader explains the failure.
      if (lastBusy !== null && timeout(Number.MAX_SAFE_INTEGER) <= 1) throw lastBusy;
      if (!(error instanceof RpcError) || error.code !== "busy") throw error;
      lastBusy = error;
      const pauseMs = busyPauseMs(error.retryAfterMs, attempt, options.random ?? Math.random);
      if (pauseMs >= timeout(Number.MAX_SAFE_INTEGER)) throw error;
      const message = error.remoteMessage ?? error.message;
      options.progress.failed(message);
      log.info("the leader is busy ({message}); asking again in {pauseMs} ms", {
        message,
        pauseMs,
      });
      await sleepOn(options.scheduler ?? SYSTEM_SCHEDULER, {
        durationMs: pauseMs,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    }
  }
}

/**
 * The refusal that retrying cannot change, or `null`. The seed's answers come over a
 * connection to the key its `/bootstrap` named (signed, when this node has a secret), so
 * they speak for the cluster.
 */
function refusal(
  error: unknown,
  seed: SeedLink,
  options: JoinPolicyOptions,
): JoinRefusedError | null {
  if (!(error instanceof RpcError)) return null;
  const seedName = `node ${seed.nodeId} at ${seed.peer}`;
  const reason = error.remoteMessage ?? error.message;
  switch (error.code) {
    case "invalid":
      return new JoinRefusedError(
        `the cluster refused node ${options.self.nodeId}: ${error.message}`,
      );
    case UNAUTHENTICATED:
      return new JoinRefusedError(
        `the cluster refused node ${options.self.nodeId}: ${seedName}: ${reason}`,
      );
    case SECRET_REFUSED:
      return new JoinRefusedError(
        `the cluster refused the secret: ${seedName}: ${reason}; give this node the cluster's ` +
          "secret (--cluster-secret-file)",
      );
    case SERVER_UNPROVEN:
      // Its /bootstrap verified, but the node does not hold the secret: an impostor with a
      // member's key replaying a recorded answer, or a seed checking another secret.
      return new JoinRefusedError(`the seed is not trusted: ${seedName}: ${error.message}`);
    default:
      return null;
  }
}

/**
 * The join's signal for a call: a join that ends (the node stops, or its log already added
 * it) ends its request at once rather than at the request's deadline.
 */
function abortedBy(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

function joinTimeoutError(options: JoinPolicyOptions, lastJoinError: string | null): Error {
  return new Error(
    `could not join within --join-timeout ${options.joinTimeoutMs} ms; last error: ${
      lastJoinError ?? "none"
    }`,
  );
}
