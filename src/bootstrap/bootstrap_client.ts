/**
 * The joiner's side of bootstrapping (DESIGN.md section 6): fetch `/bootstrap` from the
 * `--peers`, check its signature when this side has a cluster secret (section 8), connect
 * over Iroh to the P2P id a peer advertised, and check with `ping` that the node there is
 * the one that answered over HTTP.
 *
 * `findSeed` tries all peers in parallel per round and takes the first that passes every
 * check; the others are cancelled and their connections closed. A round that finds nobody
 * is followed, after a capped exponential backoff with jitter, by another, until the join
 * timeout. Every failed attempt is one log line naming the peer and the field or reason,
 * and one `onEvent` call whose `outcome` is the label of
 * `blixard_bootstrap_fetches_total{outcome}`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ClusterSecret } from "../auth/cluster_secret.ts";
import { RPC_ALPN } from "../transport/alpn.ts";
import { assertTimeoutMs } from "../transport/deadline.ts";
import { abortReason, sleepOn } from "../util/sleep.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../util/scheduler.ts";
import { backoffMs } from "../util/backoff.ts";
import type { P2pConnection } from "../transport/p2p_connection.ts";
import type { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { PING_RPC } from "../transport/ping_rpc.ts";
import { callRpc, RPC_FRAME_BYTES_MAX, RpcError } from "../transport/rpc.ts";
import { TransportError } from "../transport/transport_error.ts";
import {
  BootstrapError,
  type BootstrapFailureReason,
  type BootstrapOutcome,
  SeedNotFoundError,
} from "./bootstrap_error.ts";
import {
  BOOTSTRAP_BODY_BYTES_MAX,
  type BootstrapInfo,
  parseBootstrapInfo,
} from "./bootstrap_info.ts";
import { verifyBootstrapSignature } from "./bootstrap_signature.ts";
import { verifyDnsIdentity } from "./dns_identity.ts";
import {
  type BootstrapSource,
  parsePeerEntry,
  type PeerEntry,
  type PeerSource,
  resolvePeerEntry,
  type TxtResolver,
} from "./peer_source.ts";

const logger = getLogger(["blixard", "bootstrap"]);

/**
 * Deadline of a connect and ping to a cached identity. A node that moved does not answer at
 * its old address at all, so this is what a stale entry costs before it is fetched again.
 */
export const CACHED_ATTEMPT_TIMEOUT_MS = 1_500;
/** Default deadline of one attempt at one peer: fetch, connect and ping together. */
export const ATTEMPT_TIMEOUT_MS_DEFAULT = 5_000;
/** Default pause after the first round that found no seed. */
export const BACKOFF_INITIAL_MS_DEFAULT = 200;
/** Default longest pause between rounds. */
export const BACKOFF_MAX_MS_DEFAULT = 5_000;
/**
 * Longest pause after a round whose every attempt was refused at TCP connect: nothing
 * listens on the peer's HTTP port yet, typically a member started at the same moment
 * (a cluster's nodes started together). Such a try costs a round trip on the peer's host
 * and no work there, so the joiner looks again soon instead of finding its seed up to a
 * whole backoff step after it came up.
 */
export const REFUSED_BACKOFF_MAX_MS = 50;

/** Options of {@linkcode fetchBootstrapInfo}. */
export interface FetchBootstrapOptions {
  /** Deadline for the answer, body included. */
  timeoutMs: number;
  /** Gives up at once when aborted (rejects with the abort reason). */
  signal?: AbortSignal | undefined;
}

/**
 * Fetches and validates `source`'s `/bootstrap`. Refuses a body above 64 KiB without
 * reading it all, whether or not it declares its length. Rejects with `BootstrapError`.
 */
export async function fetchBootstrapInfo(
  source: BootstrapSource,
  options: FetchBootstrapOptions,
): Promise<BootstrapInfo> {
  assertTimeoutMs(options.timeoutMs);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const detail = `/bootstrap: no answer within ${options.timeoutMs} ms`;
    controller.abort(new BootstrapError(source.peer, "timeout", detail));
  }, options.timeoutMs);
  const onAbort = () => controller.abort(abortReason(options.signal));
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const response = await fetch(source.url, {
      signal: controller.signal,
      redirect: "manual",
      headers: { accept: "application/json" },
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      const reason = response.status === 429 ? "rate_limited" : "http_status";
      throw new BootstrapError(source.peer, reason, `/bootstrap: HTTP status ${response.status}`);
    }
    return parseBootstrapInfo(await readBody(response, source), source.peer);
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason;
    if (error instanceof BootstrapError) throw error;
    throw new BootstrapError(
      source.peer,
      "unreachable",
      `/bootstrap: ${describeFetchError(error)}`,
      {
        cause: error,
      },
    );
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

async function readBody(response: Response, source: BootstrapSource): Promise<string> {
  const tooLarge = (detail: string) =>
    new BootstrapError(
      source.peer,
      "body_too_large",
      `/bootstrap: body ${detail}; the limit is ${BOOTSTRAP_BODY_BYTES_MAX} bytes`,
    );
  const declaredBytes = Number(response.headers.get("content-length") ?? "0");
  if (declaredBytes > BOOTSTRAP_BODY_BYTES_MAX) {
    await response.body?.cancel();
    throw tooLarge(`of ${declaredBytes} bytes declared`);
  }
  const reader = response.body?.getReader();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const decode = (bytes?: Uint8Array): string => {
    try {
      return bytes === undefined ? decoder.decode() : decoder.decode(bytes, { stream: true });
    } catch (error) {
      throw new BootstrapError(source.peer, "not_json", "/bootstrap body: not UTF-8 text", {
        cause: error,
      });
    }
  };
  let text = "";
  let receivedBytes = 0;
  for (;;) {
    const { done, value } = await reader?.read() ?? { done: true, value: undefined };
    if (done) return text + decode();
    receivedBytes += value.length;
    if (receivedBytes > BOOTSTRAP_BODY_BYTES_MAX) {
      await reader?.cancel();
      throw tooLarge(`exceeds ${BOOTSTRAP_BODY_BYTES_MAX} bytes`);
    }
    text += decode(value);
  }
}

/** `"Connection refused (os error 111)"` rather than `"fetch failed"` and its cause chain. */
function describeFetchError(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const message = cause instanceof Error ? cause.message : String(cause);
  return message.split(": ").at(-1) ?? message;
}

/** What {@linkcode findSeed} reports for each attempt, for logs, status and metrics. */
export interface BootstrapEvent {
  /** The peer as written in `--peers`, or `record (dns:NAME)`. */
  peer: string;
  /** The label of `blixard_bootstrap_fetches_total{outcome}`. */
  outcome: BootstrapOutcome;
  /** Why it failed, finer than `outcome`; `null` on success. */
  reason: BootstrapFailureReason | null;
  /** The `BootstrapInfo` field at fault, or `null`. */
  field: string | null;
  /** One line for the operator. */
  message: string;
}

/** Options of {@linkcode findSeed}. */
export interface FindSeedOptions {
  /** The node's endpoint, to connect over. */
  endpoint: P2pEndpoint;
  /** Give up after this long, across all rounds. */
  joinTimeoutMs: number;
  /** Deadline of one attempt at one peer (default 5 s, never beyond the join timeout). */
  attemptTimeoutMs?: number;
  /** Uniform in [0, 1): the jitter of the backoff (default `Math.random`). */
  random?: () => number;
  /** Called once per finished attempt. */
  onEvent?: (event: BootstrapEvent) => void;
  /** Stops the search at once; `findSeed` rejects with the reason. */
  signal?: AbortSignal;
  /** First pause between rounds (default 200 ms); it doubles each round. */
  backoffInitialMs?: number;
  /** Longest pause between rounds (default 5 s). */
  backoffMaxMs?: number;
  /** TXT lookups for `dns:` entries (default `Deno.resolveDns`). */
  resolveTxt?: TxtResolver;
  /**
   * The cluster secret, or `null` for none (the default). With one, an answer that is not
   * signed with it is refused before anything connects to the P2P id it names.
   */
  clusterSecret?: ClusterSecret | null;
  /**
   * Identities verified by earlier runs, by the `--peers` entry that gave them (the CLI's
   * `peers.json`, `peer_cache.ts`): dialled without fetching `/bootstrap`. Default: none.
   */
  seedCache?: SeedCache;
}

/** Verified `/bootstrap` answers kept between runs, by the peer entry they came from. */
export interface SeedCache {
  /** The identity `entry` gave last time, or `null`. */
  lookup(entry: string): BootstrapInfo | null;
  /** Keeps `info`, verified just now, as what `entry` gives. */
  remember(entry: string, info: BootstrapInfo): void;
  /** Drops `entry`: its key no longer answers where it said. */
  forget(entry: string): void;
}

/** What the search needs of a seed's connection: to close a loser, to name its path. */
export type SeedConnection = Pick<P2pConnection, "close" | "path">;

/** A verified seed: its `/bootstrap` answer and an open `blixard/rpc/1` connection to it. */
export interface Seed<Connection extends SeedConnection = P2pConnection> {
  /** The peer as written in `--peers`. */
  peer: string;
  /** What the peer's `/bootstrap` said, verified by the connection and `ping`. */
  info: BootstrapInfo;
  /** Connected to `info.p2p_node_id`; the caller owns it and must close it. */
  connection: Connection;
}

/**
 * How the search reaches peers: HTTP and Iroh in production (`findSeed`); the simulator's
 * network in simulation, on its clock (`searchSeeds`).
 */
export interface SeedReach<Connection extends SeedConnection> {
  /** The clock of the deadlines and of the pauses between rounds. */
  scheduler: Scheduler;
  /** `fetchBootstrapInfo`: the identity `source` advertises. */
  fetchInfo(source: BootstrapSource, options: FetchBootstrapOptions): Promise<BootstrapInfo>;
  /** `connectSeed`: a connection to the key `info` names, checked with `ping`. */
  connect(
    info: BootstrapInfo,
    peer: string,
    options: { deadlineMs: number; signal: AbortSignal; advertisedBy: string },
  ): Promise<Seed<Connection>>;
}

/**
 * Finds a member to join through. Throws `BootstrapError` at once for a malformed entry,
 * and `SeedNotFoundError`, listing the last failure per peer, after `joinTimeoutMs`.
 */
export function findSeed(peers: string[], options: FindSeedOptions): Promise<Seed> {
  return searchSeeds(peers, options, networkReach(options.endpoint));
}

/** The production `SeedReach`: `/bootstrap` over HTTP, Iroh from `endpoint`, system time. */
export function networkReach(endpoint: P2pEndpoint): SeedReach<P2pConnection> {
  return {
    scheduler: SYSTEM_SCHEDULER,
    fetchInfo: fetchBootstrapInfo,
    connect: (info, peer, options) => connectSeed(info, peer, { ...options, endpoint }),
  };
}

/** `findSeed`, reaching peers through `reach`. */
export async function searchSeeds<Connection extends SeedConnection>(
  peers: string[],
  options: Omit<FindSeedOptions, "endpoint">,
  reach: SeedReach<Connection>,
): Promise<Seed<Connection>> {
  assertTimeoutMs(options.joinTimeoutMs);
  if (peers.length === 0) throw new RangeError("findSeed() needs at least one peer");
  const entries = peers.map((peer) => parsePeerEntry(peer));
  const clock = reach.scheduler;
  const deadlineMs = clock.now() + options.joinTimeoutMs;
  const failures = new Map<string, BootstrapError>();
  for (let round = 0;; round++) {
    options.signal?.throwIfAborted();
    const attemptMs = Math.min(
      options.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS_DEFAULT,
      Math.max(1, Math.floor(deadlineMs - clock.now())),
    );
    const roundFailures: BootstrapError[] = [];
    const seed = await runRound(entries, { ...options, attemptMs, failures, roundFailures, reach });
    if (seed !== null) return seed;
    const pauseMs = pauseAfterRound(round, roundFailures, options);
    if (clock.now() + pauseMs >= deadlineMs) {
      const lastFailures = peers.flatMap((peer) => failures.get(peer) ?? []);
      throw new SeedNotFoundError(lastFailures, {
        joinTimeoutMs: options.joinTimeoutMs,
        rounds: round + 1,
      });
    }
    await sleepOn(clock, { durationMs: pauseMs, signal: options.signal });
  }
}

/**
 * The pause after round `round` that found no seed: the backoff, capped at
 * `REFUSED_BACKOFF_MAX_MS` when every attempt of the round was refused at TCP connect.
 */
export function pauseAfterRound(
  round: number,
  roundFailures: readonly BootstrapError[],
  options: Pick<FindSeedOptions, "backoffInitialMs" | "backoffMaxMs" | "random">,
): number {
  const pauseMs = backoffMs(round, {
    initialMs: options.backoffInitialMs ?? BACKOFF_INITIAL_MS_DEFAULT,
    maxMs: options.backoffMaxMs ?? BACKOFF_MAX_MS_DEFAULT,
    random: options.random ?? Math.random,
  });
  const allRefused = roundFailures.length > 0 && roundFailures.every(isConnectionRefused);
  return allRefused ? Math.min(pauseMs, REFUSED_BACKOFF_MAX_MS) : pauseMs;
}

/**
 * Whether `failure` is a refused TCP connect to the peer's HTTP port. Deno's fetch error
 * carries no code, only the OS's words ("Connection refused (os error 111)" on Linux).
 */
export function isConnectionRefused(failure: BootstrapError): boolean {
  const detail = failure.message.slice(`peer ${failure.peer}: `.length);
  return failure.reason === "unreachable" && /^\/bootstrap: connection refused/i.test(detail);
}

interface RoundContext<Connection extends SeedConnection>
  extends Omit<FindSeedOptions, "endpoint"> {
  attemptMs: number;
  failures: Map<string, BootstrapError>;
  /** Every failure of this round, in the order they came. */
  roundFailures: BootstrapError[];
  reach: SeedReach<Connection>;
}

/** Tries every entry at once; the first verified seed wins and the rest are cancelled. */
async function runRound<Connection extends SeedConnection>(
  entries: PeerEntry[],
  context: RoundContext<Connection>,
): Promise<Seed<Connection> | null> {
  const cancel = new AbortController();
  const signal = context.signal === undefined
    ? cancel.signal
    : AbortSignal.any([context.signal, cancel.signal]);
  const deadlineMs = context.reach.scheduler.now() + context.attemptMs;
  let winner: Seed<Connection> | null = null;
  const claim = (seed: Seed<Connection>): boolean => {
    if (winner !== null || signal.aborted) return false;
    winner = seed;
    cancel.abort(new Error("another seed answered first"));
    return true;
  };
  const attempts = entries.map((entry) =>
    attemptEntry(entry, { ...context, signal, deadlineMs, claim }).catch((error) => {
      if (!signal.aborted) recordFailure(context, toBootstrapError(error, entry.entry));
    })
  );
  await Promise.all(attempts);
  context.signal?.throwIfAborted();
  return winner;
}

interface AttemptContext<Connection extends SeedConnection> extends RoundContext<Connection> {
  signal: AbortSignal;
  deadlineMs: number;
  claim: (seed: Seed<Connection>) => boolean;
}

async function attemptEntry<Connection extends SeedConnection>(
  entry: PeerEntry,
  context: AttemptContext<Connection>,
): Promise<void> {
  const sources = await resolvePeerEntry(entry, {
    signal: context.signal,
    ...(context.resolveTxt === undefined ? {} : { resolveTxt: context.resolveTxt }),
  });
  await Promise.all(sources.map((source) =>
    attemptSource(source, context).catch((error) => {
      if (!context.signal.aborted) {
        recordFailure(context, toBootstrapError(error, source.peer), entry.entry);
      }
    })
  ));
}

/**
 * One source: an identity read from DNS is verified and dialled as it is; a `/bootstrap`
 * URL is fetched, unless the cache holds the identity it gave last time, which is dialled
 * first and, if its key no longer answers there, forgotten and fetched again once.
 */
async function attemptSource<Connection extends SeedConnection>(
  source: PeerSource,
  context: AttemptContext<Connection>,
): Promise<void> {
  const secret = context.clusterSecret ?? null;
  if ("identity" in source) {
    if (secret !== null) {
      await verifyDnsIdentity(source.identity, {
        secret,
        peer: source.peer,
        nowSeconds: Date.now() / 1000,
      });
    }
    const info = source.identity.info;
    return await connectToSeed(
      { peer: source.peer, info, advertisedBy: "its DNS record" },
      context,
    );
  }
  const cached = await usableCachedIdentity(source.peer, context);
  if (cached !== null) {
    try {
      const seed = { peer: source.peer, info: cached, advertisedBy: "the cached /bootstrap" };
      return await connectToSeed(seed, {
        ...context,
        deadlineMs: Math.min(
          context.deadlineMs,
          context.reach.scheduler.now() + CACHED_ATTEMPT_TIMEOUT_MS,
        ),
      });
    } catch (error) {
      context.signal.throwIfAborted();
      logger.info("peer {peer}: the cached identity did not answer ({reason}); fetching it again", {
        peer: source.peer,
        reason: (error as Error).message,
      });
      context.seedCache?.forget(source.peer);
    }
  }
  const { signal } = context;
  const info = await context.reach.fetchInfo(source, {
    timeoutMs: remainingMs(context, context.reach.scheduler),
    signal,
  });
  if (secret !== null) await verifyBootstrapSignature(info, { secret, peer: source.peer });
  await connectToSeed({ peer: source.peer, info, advertisedBy: "/bootstrap" }, context);
  context.seedCache?.remember(source.peer, info);
}

/**
 * The cached identity of `peer`, or `null`. With a cluster secret, only an entry whose
 * signature still verifies: one cached by a run without the secret was never checked.
 */
async function usableCachedIdentity(
  peer: string,
  context: Pick<FindSeedOptions, "seedCache" | "clusterSecret">,
): Promise<BootstrapInfo | null> {
  const cached = context.seedCache?.lookup(peer) ?? null;
  const secret = context.clusterSecret ?? null;
  if (cached === null || secret === null) return cached;
  try {
    await verifyBootstrapSignature(cached, { secret, peer });
    return cached;
  } catch {
    return null;
  }
}

/** Connects to the seed (`connectSeed`), then claims it for this search unless another won. */
async function connectToSeed<Connection extends SeedConnection>(
  seed: { peer: string; info: BootstrapInfo; advertisedBy: string },
  context: AttemptContext<Connection>,
): Promise<void> {
  const { peer, info } = seed;
  const found = await context.reach.connect(info, peer, {
    deadlineMs: context.deadlineMs,
    signal: context.signal,
    advertisedBy: seed.advertisedBy,
  });
  if (!context.claim(found)) {
    found.connection.close("another seed answered first");
    return;
  }
  const message = `peer ${peer}: seed found: node ${info.node_id}, P2P id ` +
    `${info.p2p_node_id}, ${found.connection.path()} path`;
  logger.info`${message}`;
  context.onEvent?.({ peer, outcome: "ok", reason: null, field: null, message });
}

/**
 * Connects to the key that `info` names and checks with `ping` that the node there is the
 * one `info` describes; the seed's connection is the caller's to close. `info` must be
 * trusted as far as this side can (signed, when it has a secret). Rejects with
 * `BootstrapError` (`wrong_identity`), `TransportError` or `RpcError`.
 *
 * With `ping: false` the connection's authenticated key is the whole check: for an `info`
 * the operator pinned (an invite ticket names each member's key and id), where the ping's
 * answer would add nothing the key does not prove, and cost a round trip.
 */
export async function connectSeed(
  info: BootstrapInfo,
  peer: string,
  options: {
    endpoint: P2pEndpoint;
    deadlineMs: number;
    signal: AbortSignal;
    /** Where `info` came from, for the error message: `/bootstrap` or `mDNS`. */
    advertisedBy: string;
    /** `false`: no ping, the key is the check (see above). Default `true`. */
    ping?: boolean;
  },
): Promise<Seed> {
  const { signal } = options;
  const connection = await options.endpoint.connect(
    { p2pNodeId: info.p2p_node_id, addresses: info.p2p_addresses, relayUrl: info.p2p_relay_url },
    RPC_ALPN,
    { timeoutMs: remainingMs(options), signal, frameBytesMax: RPC_FRAME_BYTES_MAX },
  );
  if (options.ping === false) return { peer, info, connection };
  try {
    const pong = await callRpc(connection, PING_RPC, {}, {
      timeoutMs: remainingMs(options),
      signal,
    });
    if (pong.nodeId !== info.node_id || pong.p2pNodeId !== info.p2p_node_id) {
      throw new BootstrapError(
        peer,
        "wrong_identity",
        `ping: node ${pong.nodeId} (${pong.p2pNodeId}) answered, ${options.advertisedBy} ` +
          `advertised node ${info.node_id} (${info.p2p_node_id})`,
        { field: pong.nodeId !== info.node_id ? "node_id" : "p2p_node_id" },
      );
    }
  } catch (error) {
    connection.close("seed check failed");
    throw error;
  }
  return { peer, info, connection };
}

function remainingMs(
  context: { deadlineMs: number },
  clock: Pick<Scheduler, "now"> = SYSTEM_SCHEDULER,
): number {
  return Math.max(1, Math.floor(context.deadlineMs - clock.now()));
}

/**
 * Logs and reports one failure, and keeps it as the peer's latest. `entry` is the
 * `--peers` entry a DNS-derived source came from.
 */
function recordFailure<Connection extends SeedConnection>(
  context: RoundContext<Connection>,
  failure: BootstrapError,
  entry = failure.peer,
): void {
  // A timeout in a round the join's deadline cut short (down to 1 ms) says less than the
  // peer's earlier failure: the final line should say why the peer was refused.
  const fullAttemptMs = Math.min(
    context.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS_DEFAULT,
    context.joinTimeoutMs,
  );
  const cutShortTimeout = context.attemptMs < fullAttemptMs &&
    (failure.reason === "timeout" || failure.reason === "p2p_timeout");
  // A seed that is not up yet refuses every round, up to 20 a second: one warning when it
  // starts to, the repeats at debug level.
  const repeatedRefusal = isConnectionRefused(failure) &&
    context.failures.get(entry)?.message === failure.message;
  if (!cutShortTimeout || !context.failures.has(entry)) context.failures.set(entry, failure);
  context.roundFailures.push(failure);
  const properties = failure.field === null
    ? { peer: failure.peer, reason: failure.reason }
    : { peer: failure.peer, reason: failure.reason, field: failure.field };
  // A tagged template, because the message holds text from the network: a `{` in it must
  // not be read as a placeholder.
  if (repeatedRefusal) logger.with(properties).debug`${failure.message}`;
  else logger.with(properties).warn`${failure.message}`;
  context.onEvent?.({
    peer: failure.peer,
    outcome: failure.outcome,
    reason: failure.reason,
    field: failure.field,
    message: failure.message,
  });
}

const TRANSPORT_REASONS: Partial<Record<string, BootstrapFailureReason>> = {
  connect_timeout: "p2p_timeout",
  wrong_identity: "wrong_identity",
  deadline_exceeded: "p2p_timeout",
};

function toBootstrapError(error: unknown, peer: string): BootstrapError {
  if (error instanceof BootstrapError) return error;
  if (error instanceof TransportError) {
    const reason = TRANSPORT_REASONS[error.code] ?? "p2p_unreachable";
    return new BootstrapError(peer, reason, `P2P: ${error.message}`, { cause: error });
  }
  if (error instanceof RpcError) {
    const reason = TRANSPORT_REASONS[error.code] ??
      (error.code === "unavailable" ? "p2p_unreachable" : "ping_failed");
    return new BootstrapError(peer, reason, `ping: ${error.message}`, { cause: error });
  }
  return new BootstrapError(peer, "unreachable", String(error), { cause: error });
}
