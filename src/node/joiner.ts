/**
 * The joiner's side of DESIGN.md section 6: find a seed (`/bootstrap` over HTTP, an Iroh
 * connection that reaches the advertised key, `ping`), learn the members from it, and ask
 * to be added. The node's Raft loop and transport already run, so the leader can replicate
 * to this node the moment it appends the change; the seed's member list lets the leader's
 * connection in before this node's own log names it.
 *
 * Errors that retrying cannot fix (the id is taken by another key) end the join at once;
 * the others are retried, seed search included, with capped exponential backoff and
 * jitter until `--join-timeout`.
 *
 * @module
 */

import { findSeed, type Seed } from "../bootstrap/bootstrap_client.ts";
import type { BootstrapEvent } from "../bootstrap/bootstrap_client.ts";
import { SeedNotFoundError } from "../bootstrap/bootstrap_error.ts";
import type { MemberInfo } from "../state_machine/member_info.ts";
import { JOIN_RPC, STATUS_RPC } from "../transport/cluster_rpcs.ts";
import type { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { callRpc, RpcError } from "../transport/rpc.ts";
import { getLogger } from "../log/logging.ts";
import type { JoinProgress } from "./join_progress.ts";
import type { MemberDirectory } from "./member_directory.ts";

const log = getLogger(["blixard", "join"]);

/** Deadline of one join request; the leader answers once the change is committed. */
const JOIN_REQUEST_TIMEOUT_MS = 10_000;
/** Deadline of the status request that lists the members. */
const STATUS_REQUEST_TIMEOUT_MS = 3_000;
/** First and longest pause between join attempts. */
const RETRY_BACKOFF_MIN_MS = 25;
const RETRY_BACKOFF_MAX_MS = 1_000;
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
  onBootstrapEvent?: (event: BootstrapEvent) => void;
  signal?: AbortSignal;
}

/** Joins the cluster of one of `peers`, or rejects after the join timeout. */
export async function joinCluster(options: JoinOptions): Promise<JoinOutcome> {
  const deadlineMs = performance.now() + options.joinTimeoutMs;
  /** Why the last join request failed, once a seed was found. */
  let lastJoinError: string | null = null;
  for (let attempt = 0;; attempt++) {
    const remainingMs = Math.floor(deadlineMs - performance.now());
    if (remainingMs <= 0) throw joinTimeoutError(options, lastJoinError);
    let seed: Seed;
    try {
      seed = await findSeed([...options.peers], {
        endpoint: options.endpoint,
        joinTimeoutMs: remainingMs,
        backoffInitialMs: SEED_BACKOFF_MIN_MS,
        backoffMaxMs: SEED_BACKOFF_MAX_MS,
        ...(options.onBootstrapEvent === undefined ? {} : { onEvent: options.onBootstrapEvent }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
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
      if (lastJoinError === null || performance.now() < deadlineMs) lastJoinError = message;
      options.progress.failed(message);
      log.warn("join through {peer} failed, retrying: {message}", { peer: seed.peer, message });
      await sleep(backoffMs(attempt), options.signal);
    } finally {
      seed.connection.close("join finished");
    }
  }
}

async function requestJoin(
  seed: Seed,
  options: JoinOptions,
  deadlineMs: number,
): Promise<JoinOutcome> {
  options.progress.advance("connected");
  log.info("connected to seed {peer} (node {seedId}, {path} path)", {
    peer: seed.peer,
    seedId: seed.info.node_id,
    path: seed.connection.path(),
  });
  const timeout = (capMs: number) =>
    Math.max(1, Math.min(capMs, Math.floor(deadlineMs - performance.now())));
  const status = await callRpc(seed.connection, STATUS_RPC, {}, {
    timeoutMs: timeout(STATUS_REQUEST_TIMEOUT_MS),
  });
  options.directory.rememberProvisional(
    status.members.flatMap((member) =>
      member.p2p_node_id === null ? [] : [{
        nodeId: member.node_id,
        p2pNodeId: member.p2p_node_id,
        addresses: member.p2p_addresses,
        relayUrl: member.p2p_relay_url,
      }]
    ),
  );
  options.progress.advance("joining");
  try {
    const answer = await callRpc(seed.connection, JOIN_RPC, { member: options.self }, {
      timeoutMs: timeout(JOIN_REQUEST_TIMEOUT_MS),
    });
    options.directory.rememberProvisional(answer.members);
    options.progress.advance("learner");
    log.info("joined cluster {clusterId} as a learner through {peer}; leader is node {leaderId}", {
      clusterId: answer.clusterId,
      peer: seed.peer,
      leaderId: answer.leaderId,
    });
    return { clusterId: answer.clusterId, leaderId: answer.leaderId, peer: seed.peer };
  } catch (error) {
    if (error instanceof RpcError && error.code === "invalid") {
      throw new JoinRefusedError(
        `the cluster refused node ${options.self.nodeId}: ${error.message}`,
      );
    }
    throw error;
  }
}

function joinTimeoutError(options: JoinOptions, lastJoinError: string | null): Error {
  return new Error(
    `could not join within --join-timeout ${options.joinTimeoutMs} ms; last error: ${
      lastJoinError ?? "none"
    }`,
  );
}

function backoffMs(attempt: number): number {
  const capped = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS * 2 ** Math.min(attempt, 20));
  return capped / 2 + (capped / 2) * Math.random();
}

function sleep(durationMs: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, durationMs);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
