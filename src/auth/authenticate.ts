/**
 * The caller's side of cluster-secret authentication (DESIGN.md section 8): `authenticate()`
 * asks a node for a challenge with a fresh nonce, checks the node's proof of the secret over
 * that nonce (mutual proof: a node with a member's key but without the secret is refused
 * before it receives anything), and answers the challenge with the proof of
 * `secret_proof.ts`. The `AuthenticatingRpcClient` does so before its first call to each
 * node, and again whenever a node answers `unauthenticated` (it forgot, or restarted), then
 * sends the refused request again, once. That is safe for every method: a node refuses an
 * unauthenticated request before it runs.
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
  SERVER_UNPROVEN,
  UNAUTHENTICATED,
} from "./auth_rpcs.ts";
import type { ClusterSecret } from "./cluster_secret.ts";
import { ExpiringMap } from "./expiring_map.ts";
import { computeProof, NONCE_BYTES, verifyServerProof } from "./secret_proof.ts";

/**
 * Attempts per authentication. A challenge may be pushed out by a flood of others before
 * the proof arrives (`challenge_expired`); a fresh one is tried then, a bounded number of times.
 */
const AUTHENTICATE_ATTEMPTS_MAX = 3;
/**
 * How long a node that proved the secret is not asked again. Shorter than the node's own
 * memory of this side's authentication (10 minutes), so that this side re-authenticates
 * before the node would refuse it.
 */
export const SERVER_PROOF_TTL_MS = 5 * 60_000;
/** Nodes whose proof is remembered; the oldest gives way. */
const PROVEN_SERVERS_MAX = 1024;

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
 * Checks the proof of the secret of the node that `call` reaches, then proves the secret to
 * it, which then admits this side's key. Rejects with `RpcError`: `server_unproven` when the
 * node did not prove the secret (nothing else was sent to it), the node's `secret_refused`
 * when it has another secret.
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
    const { challenge } = await challengeFromProvenServer(call, options, within());
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

/**
 * Asks for a challenge with a fresh nonce and checks the server's proof over it. A node
 * without a secret does not know the method (`unknown_method`): it proved nothing either.
 */
async function challengeFromProvenServer(
  call: RpcCall,
  options: AuthenticateOptions,
  callOptions: RpcCallOptions,
): Promise<{ challenge: Uint8Array }> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const unproven = (detail: string) =>
    new RpcError(
      SERVER_UNPROVEN,
      `node ${options.serverP2pNodeId} did not prove the cluster secret (${detail}): it is ` +
        "not a member of this cluster, or an impostor with a member's key; nothing was sent to it",
    );
  let answer: { challenge: Uint8Array; serverProof: Uint8Array };
  try {
    answer = await call(CHALLENGE_RPC, { nonce }, callOptions);
  } catch (error) {
    const noSecret = error instanceof RpcError &&
      (error.code === "unknown_method" || error.code === "invalid_request");
    if (noSecret) throw unproven("it has no cluster secret");
    throw error;
  }
  const proven = await verifyServerProof(options.secret, {
    nonce,
    callerP2pNodeId: options.callerP2pNodeId,
    serverP2pNodeId: options.serverP2pNodeId,
    proof: answer.serverProof,
  });
  if (!proven) throw unproven("its proof does not match this side's secret");
  return answer;
}

/** Options of an {@linkcode AuthenticatingRpcClient}. */
export interface AuthenticatingRpcClientOptions extends RpcClientOptions {
  /** The secret to prove when a node asks for it. */
  secret: ClusterSecret;
  /**
   * Keys this side trusts without a proof: a node's fellow members, as its replicated state
   * lists them (revoked keys are no members). Members admit each other by key, so calls
   * between them stay as they were, and work while a rotation leaves members with different
   * secrets. Default: none (a client checks every node's proof).
   */
  isKnownMember?: (p2pNodeId: string) => boolean;
}

/**
 * An `RpcClient` that, before its first call to each node, checks the node's proof of the
 * cluster secret and proves its own (mutual proof), so that no request reaches a node that
 * does not hold the secret; and that authenticates again, then sends the call again, when a
 * node answers `unauthenticated`. Concurrent calls to the same node share one
 * authentication.
 */
export class AuthenticatingRpcClient extends RpcClient {
  readonly #endpoint: P2pEndpoint;
  readonly #secret: ClusterSecret;
  readonly #isKnownMember: (p2pNodeId: string) => boolean;
  /** Authentications in progress, by the node's P2P id; each entry leaves when it settles. */
  readonly #authenticating = new Map<string, Promise<void>>();
  /** Nodes that proved the secret to this side lately. */
  readonly #proven = new ExpiringMap<string, true>({
    entriesMax: PROVEN_SERVERS_MAX,
    ttlMs: SERVER_PROOF_TTL_MS,
  });

  /** A client that connects through `endpoint` and proves `options.secret`. */
  constructor(endpoint: P2pEndpoint, options: AuthenticatingRpcClientOptions) {
    super(endpoint, options);
    this.#endpoint = endpoint;
    this.#secret = options.secret;
    this.#isKnownMember = options.isKnownMember ?? (() => false);
  }

  /** Calls `definition` on `peer`, once `peer` proved the secret and this side proved it too. */
  override async call<Definition extends RpcDefinition>(
    peer: PeerAddress,
    definition: Definition,
    request: RpcRequestOf<Definition>,
    options: RpcCallOptions,
  ): Promise<RpcResponseOf<Definition>> {
    const startedMs = performance.now();
    const remainingMs = () => Math.floor(options.timeoutMs - (performance.now() - startedMs));
    const trusted = this.#proven.get(peer.p2pNodeId) === true ||
      this.#isKnownMember(peer.p2pNodeId);
    if (!trusted) {
      await this.#authenticateWithin(peer, definition, options);
    }
    try {
      return await super.call(peer, definition, request, {
        ...options,
        timeoutMs: Math.max(1, remainingMs()),
      });
    } catch (error) {
      if (!(error instanceof RpcError) || error.code !== UNAUTHENTICATED) throw error;
    }
    await this.#authenticateWithin(peer, definition, {
      ...options,
      timeoutMs: Math.max(1, remainingMs()),
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

  /** Authenticates to `peer` within the call's deadline, or fails naming the call. */
  async #authenticateWithin(
    peer: PeerAddress,
    definition: RpcDefinition,
    options: RpcCallOptions,
  ): Promise<void> {
    const authenticateMs = Math.max(1, options.timeoutMs);
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
    }).then(() => this.#proven.set(peer.p2pNodeId, true))
      .finally(() => this.#authenticating.delete(peer.p2pNodeId));
    this.#authenticating.set(peer.p2pNodeId, authenticating);
    return authenticating;
  }
}
