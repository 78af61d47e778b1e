/**
 * The caller's side of cluster-secret authentication (DESIGN.md section 8): `authenticate()`
 * asks a node for a challenge and answers it with the proof of `secret_proof.ts`; the
 * `AuthenticatingRpcClient` does so by itself whenever a node answers `unauthenticated`,
 * then sends the refused request again, once. That is safe for every method: a node
 * refuses an unauthenticated request before it runs.
 *
 * Neither the secret nor anything derived from it but the proof leaves the process, and
 * the proof only over the encrypted P2P connection to the key it is bound to.
 *
 * @module
 */

import { assertTimeoutMs, withDeadline } from "../transport/deadline.ts";
import type { P2pEndpoint, PeerAddress } from "../transport/p2p_endpoint.ts";
import {
  type RpcCallOptions,
  RpcClient,
  type RpcClientOptions,
  type RpcDefinition,
  RpcError,
  type RpcRequestOf,
  type RpcResponseOf,
} from "../transport/rpc.ts";
import {
  AUTHENTICATE_RPC,
  CHALLENGE_EXPIRED,
  CHALLENGE_RPC,
  UNAUTHENTICATED,
} from "./auth_rpcs.ts";
import type { ClusterSecret } from "./cluster_secret.ts";
import { computeProof } from "./secret_proof.ts";

/**
 * Attempts per authentication. A challenge may be pushed out by a flood of others before
 * the proof arrives (`challenge_expired`); a fresh one is tried then, a bounded number of times.
 */
const AUTHENTICATE_ATTEMPTS_MAX = 3;

/** One call to the node being authenticated with, over whatever connects to it. */
export type RpcCall = <Definition extends RpcDefinition>(
  definition: Definition,
  request: RpcRequestOf<Definition>,
  options: RpcCallOptions,
) => Promise<RpcResponseOf<Definition>>;

/** Options of {@linkcode authenticate}. */
export interface AuthenticateOptions {
  /** The secret to prove. */
  secret: ClusterSecret;
  /** This side's P2P id. */
  callerP2pNodeId: string;
  /** The P2P id of the node `call` reaches. */
  serverP2pNodeId: string;
  /** Deadline of the whole exchange. */
  timeoutMs: number;
  /** Gives up at once when aborted. */
  signal?: AbortSignal | undefined;
}

/**
 * Proves the secret to the node that `call` reaches, which then admits this side's key.
 * Rejects with the node's `RpcError`: `secret_refused` when the node has another secret.
 */
export async function authenticate(call: RpcCall, options: AuthenticateOptions): Promise<void> {
  assertTimeoutMs(options.timeoutMs);
  const deadlineMs = performance.now() + options.timeoutMs;
  const within = (): RpcCallOptions => {
    const remainingMs = Math.floor(deadlineMs - performance.now());
    if (remainingMs < 1) {
      throw new RpcError(
        "deadline_exceeded",
        `authenticating to ${options.serverP2pNodeId}: no answer within ${options.timeoutMs} ms`,
      );
    }
    return options.signal === undefined
      ? { timeoutMs: remainingMs }
      : { timeoutMs: remainingMs, signal: options.signal };
  };
  for (let attempt = 1;; attempt++) {
    const { challenge } = await call(CHALLENGE_RPC, {}, within());
    const proof = await computeProof(options.secret, {
      challenge,
      callerP2pNodeId: options.callerP2pNodeId,
      serverP2pNodeId: options.serverP2pNodeId,
    });
    try {
      await call(AUTHENTICATE_RPC, { challenge, proof }, within());
      return;
    } catch (error) {
      const expired = error instanceof RpcError && error.code === CHALLENGE_EXPIRED;
      if (!expired || attempt >= AUTHENTICATE_ATTEMPTS_MAX) throw error;
    }
  }
}

/** Options of an {@linkcode AuthenticatingRpcClient}. */
export interface AuthenticatingRpcClientOptions extends RpcClientOptions {
  /** The secret to prove when a node asks for it. */
  secret: ClusterSecret;
}

/**
 * An `RpcClient` that proves the cluster secret to each node that answers
 * `unauthenticated`, and then sends the refused call again. Concurrent calls refused by the
 * same node share one authentication.
 */
export class AuthenticatingRpcClient extends RpcClient {
  readonly #endpoint: P2pEndpoint;
  readonly #secret: ClusterSecret;
  /** Authentications in progress, by the node's P2P id; each entry leaves when it settles. */
  readonly #authenticating = new Map<string, Promise<void>>();

  /** A client that connects through `endpoint` and proves `options.secret`. */
  constructor(endpoint: P2pEndpoint, options: AuthenticatingRpcClientOptions) {
    super(endpoint, options);
    this.#endpoint = endpoint;
    this.#secret = options.secret;
  }

  /** Calls `definition` on `peer`, authenticating first if `peer` asks for it. */
  override async call<Definition extends RpcDefinition>(
    peer: PeerAddress,
    definition: Definition,
    request: RpcRequestOf<Definition>,
    options: RpcCallOptions,
  ): Promise<RpcResponseOf<Definition>> {
    const startedMs = performance.now();
    try {
      return await super.call(peer, definition, request, options);
    } catch (error) {
      if (!(error instanceof RpcError) || error.code !== UNAUTHENTICATED) throw error;
    }
    const remainingMs = () => Math.floor(options.timeoutMs - (performance.now() - startedMs));
    const authenticateMs = Math.max(1, remainingMs());
    // The authentication may be another call's, with a longer deadline: wait only for ours.
    await withDeadline(this.#authenticateTo(peer, authenticateMs), {
      timeoutMs: authenticateMs,
      signal: options.signal,
      onTimeout: () =>
        new RpcError(
          "deadline_exceeded",
          `${definition.method} to ${peer.p2pNodeId}: not authenticated within ` +
            `${options.timeoutMs} ms`,
        ),
    });
    const retryMs = remainingMs();
    if (retryMs < 1) {
      throw new RpcError(
        "deadline_exceeded",
        `${definition.method} to ${peer.p2pNodeId}: authenticating took the whole ` +
          `${options.timeoutMs} ms`,
      );
    }
    return await super.call(peer, definition, request, { ...options, timeoutMs: retryMs });
  }

  /**
   * Authenticates to `peer` within `timeoutMs`, or joins an authentication in progress. It
   * carries no caller's signal: one caller giving up must not fail the others that wait.
   */
  #authenticateTo(peer: PeerAddress, timeoutMs: number): Promise<void> {
    const pending = this.#authenticating.get(peer.p2pNodeId);
    if (pending !== undefined) return pending;
    const call: RpcCall = (definition, request, callOptions) =>
      super.call(peer, definition, request, callOptions);
    const authenticating = authenticate(call, {
      secret: this.#secret,
      callerP2pNodeId: this.#endpoint.nodeId,
      serverP2pNodeId: peer.p2pNodeId,
      timeoutMs,
    }).finally(() => this.#authenticating.delete(peer.p2pNodeId));
    this.#authenticating.set(peer.p2pNodeId, authenticating);
    return authenticating;
  }
}
