/**
 * `SecretGate`: the server side of cluster-secret authentication (DESIGN.md section 8).
 *
 * A node with a secret serves `cluster.challenge` and `cluster.authenticate`
 * (`auth_rpcs.ts`) to anyone, and lets every other method through only for callers whose
 * key is a member's (members reached the cluster through this same gate, or founded it) or
 * was authenticated within `AUTHENTICATION_TTL_MS`. Everyone else is answered
 * `unauthenticated` before the method runs, so a refused request has no effect and may be
 * sent again once the caller has authenticated. `ping` stays open: it tells no more than
 * `/bootstrap` does, and joiners use it to check the seed's identity first.
 *
 * A removed member's key is revoked (`isRevoked`, the replicated revoked set): it is refused
 * everything, `revoked`, from the moment this node applies the removal, even if it proved
 * the secret before or proves it again.
 *
 * Authentication belongs to the key, not to one connection: the QUIC handshake proves the
 * key on every connection, and a client whose connection broke keeps its standing. It
 * expires after a bounded time, and the caller authenticates again when refused.
 *
 * What strangers can make the node remember is bounded: one outstanding challenge per key,
 * at most `CHALLENGES_OUTSTANDING_MAX` of them, each valid for `CHALLENGE_TTL_MS` and used
 * once (a wrong proof burns it); challenges are rate limited by a `TokenBucket`, as
 * `/bootstrap` is; at most `AUTHENTICATED_KEYS_MAX` keys are remembered, the oldest giving way.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { TokenBucket } from "../http/token_bucket.ts";
import { type RpcDefinition, RpcError, type RpcHandler, type RpcServer } from "../transport/rpc.ts";
import {
  AUTHENTICATE_RPC,
  CHALLENGE_EXPIRED,
  CHALLENGE_RPC,
  REVOKED,
  REVOKED_MESSAGE,
  SECRET_REFUSED,
  UNAUTHENTICATED,
  UNAUTHENTICATED_MESSAGE,
} from "./auth_rpcs.ts";
import type { ClusterSecret } from "./cluster_secret.ts";
import { ExpiringMap } from "./expiring_map.ts";
import { CHALLENGE_BYTES, verifyProof } from "./secret_proof.ts";

const logger = getLogger(["blixard", "auth"]);

/** Most challenges outstanding at once, across all callers. */
export const CHALLENGES_OUTSTANDING_MAX = 256;
/** How long a challenge may be answered: a caller answers within one round trip. */
export const CHALLENGE_TTL_MS = 10_000;
/** Most authenticated keys remembered; the oldest authentication gives way. */
export const AUTHENTICATED_KEYS_MAX = 1024;
/** How long an authentication lasts; the caller authenticates again when refused after it. */
export const AUTHENTICATION_TTL_MS = 10 * 60_000;
/**
 * Sustained challenges per second, across all callers. Each caller needs one per node per
 * authentication; the limit also bounds the log lines of refused proofs.
 */
export const CHALLENGES_PER_SECOND = 20;
/** Challenges allowed in a burst, e.g. a script running many commands at once. */
export const CHALLENGE_BURST = 40;

/** The bounds of a gate; the constants above unless a test sets them. */
export interface SecretGateLimits {
  /** `CHALLENGES_OUTSTANDING_MAX` */
  challengesOutstandingMax: number;
  /** `CHALLENGE_TTL_MS` */
  challengeTtlMs: number;
  /** `AUTHENTICATED_KEYS_MAX` */
  authenticatedKeysMax: number;
  /** `AUTHENTICATION_TTL_MS` */
  authenticationTtlMs: number;
  /** `CHALLENGES_PER_SECOND` */
  challengesPerSecond: number;
  /** `CHALLENGE_BURST` */
  challengeBurst: number;
}

const DEFAULT_LIMITS: SecretGateLimits = {
  challengesOutstandingMax: CHALLENGES_OUTSTANDING_MAX,
  challengeTtlMs: CHALLENGE_TTL_MS,
  authenticatedKeysMax: AUTHENTICATED_KEYS_MAX,
  authenticationTtlMs: AUTHENTICATION_TTL_MS,
  challengesPerSecond: CHALLENGES_PER_SECOND,
  challengeBurst: CHALLENGE_BURST,
};

/** Where methods are registered: an `RpcServer`, or a gate's guarded view of one. */
export type RpcRegistrar = Pick<RpcServer, "register">;

/** Options of a {@linkcode SecretGate}. */
export interface SecretGateOptions {
  /** The cluster secret. */
  secret: ClusterSecret;
  /** This node's P2P id: the server key every proof is bound to. */
  selfP2pNodeId: string;
  /** Whether `p2pNodeId` is a current member's key (members need no authentication). */
  isMember: (p2pNodeId: string) => boolean;
  /**
   * Whether `p2pNodeId` is a removed member's key: refused everything, even once proven,
   * from the moment the removal is applied here (not after its authentication expires).
   */
  isRevoked?: (p2pNodeId: string) => boolean;
  /** Monotonic clock in milliseconds; `performance.now` unless a test injects one. */
  now?: () => number;
  /** Bounds other than the defaults (tests). */
  limits?: Partial<SecretGateLimits>;
}

/** Issues challenges, checks proofs, and refuses callers that are neither members nor authenticated. */
export class SecretGate {
  readonly #options: SecretGateOptions;
  readonly #limits: SecretGateLimits;
  /** The outstanding challenge of each caller key. */
  readonly #challenges: ExpiringMap<string, Uint8Array>;
  /** Keys that proved the secret. */
  readonly #authenticated: ExpiringMap<string, true>;
  readonly #challengeLimiter: TokenBucket;

  /** A gate for a node with `options.secret`. */
  constructor(options: SecretGateOptions) {
    this.#options = options;
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#limits = limits;
    const now = options.now ?? (() => performance.now());
    this.#challenges = new ExpiringMap({
      entriesMax: limits.challengesOutstandingMax,
      ttlMs: limits.challengeTtlMs,
      now,
    });
    this.#authenticated = new ExpiringMap({
      entriesMax: limits.authenticatedKeysMax,
      ttlMs: limits.authenticationTtlMs,
      now,
    });
    this.#challengeLimiter = new TokenBucket({
      capacity: limits.challengeBurst,
      refillPerSecond: limits.challengesPerSecond,
      now,
    });
  }

  /** Registers `cluster.challenge` and `cluster.authenticate` on `server`, open to anyone. */
  register(server: RpcRegistrar): void {
    server.register(CHALLENGE_RPC, (_request, context) => this.#challenge(context.remoteNodeId));
    server.register(
      AUTHENTICATE_RPC,
      (request, context) => this.#authenticate(context.remoteNodeId, request),
    );
  }

  /** A view of `server` whose methods refuse callers that are neither members nor authenticated. */
  guard(server: RpcRegistrar): RpcRegistrar {
    return {
      register: <Definition extends RpcDefinition>(
        definition: Definition,
        handler: RpcHandler<Definition>,
      ) => {
        server.register(definition, (request, context) => {
          this.#refuseRevoked(context.remoteNodeId);
          if (!this.admits(context.remoteNodeId)) {
            throw new RpcError(UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE);
          }
          return handler(request, context);
        });
      },
    };
  }

  /** Whether the caller with key `p2pNodeId` may call guarded methods now. */
  admits(p2pNodeId: string): boolean {
    if (this.#options.isRevoked?.(p2pNodeId) === true) return false;
    return this.#options.isMember(p2pNodeId) || this.#authenticated.get(p2pNodeId) === true;
  }

  /** Answers a revoked key `revoked` (so a removed node learns why), and forgets its proof. */
  #refuseRevoked(p2pNodeId: string): void {
    if (this.#options.isRevoked?.(p2pNodeId) !== true) return;
    this.#authenticated.take(p2pNodeId);
    throw new RpcError(REVOKED, REVOKED_MESSAGE);
  }

  #challenge(callerP2pNodeId: string): { challenge: Uint8Array } {
    this.#refuseRevoked(callerP2pNodeId);
    const taken = this.#challengeLimiter.tryTake();
    if (!taken.allowed) {
      throw new RpcError(
        "overloaded",
        `too many challenges requested; retry in ${taken.retryAfterMs} ms`,
      );
    }
    const challenge = crypto.getRandomValues(new Uint8Array(CHALLENGE_BYTES));
    // A new challenge replaces the caller's previous one: one outstanding per key.
    this.#challenges.set(callerP2pNodeId, challenge);
    return { challenge };
  }

  async #authenticate(
    callerP2pNodeId: string,
    request: { challenge: Uint8Array; proof: Uint8Array },
  ): Promise<{ validForMs: number }> {
    this.#refuseRevoked(callerP2pNodeId);
    // Taken, not read: a challenge is good for one attempt, right or wrong.
    const issued = this.#challenges.take(callerP2pNodeId);
    if (issued === undefined || !sameBytes(issued, request.challenge)) {
      throw new RpcError(
        CHALLENGE_EXPIRED,
        "no such challenge is outstanding for this key (expired, used or replaced): " +
          "ask for a new one with cluster.challenge",
      );
    }
    const valid = await verifyProof(this.#options.secret, {
      challenge: issued,
      callerP2pNodeId,
      serverP2pNodeId: this.#options.selfP2pNodeId,
      proof: request.proof,
    });
    if (!valid) {
      logger.warn("P2P id {peer} failed to prove the cluster secret", { peer: callerP2pNodeId });
      throw new RpcError(
        SECRET_REFUSED,
        "the proof does not match this cluster's secret: the caller's secret differs from " +
          "the cluster's",
      );
    }
    this.#authenticated.set(callerP2pNodeId, true);
    logger.debug("P2P id {peer} proved the cluster secret", { peer: callerP2pNodeId });
    return { validForMs: this.#limits.authenticationTtlMs };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}
