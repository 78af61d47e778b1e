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
 * once (a wrong proof burns it); challenges are rate limited per caller key and per source
 * address, with a global bucket behind them only as a backstop, so that one stranger cannot
 * lock out the others (`SourceRateLimiter`, as for `/bootstrap`); at most
 * `AUTHENTICATED_KEYS_MAX` keys are remembered, the oldest giving way.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type RateLimit, SourceRateLimiter } from "../util/source_rate_limiter.ts";
import { sourceOfAddress } from "../transport/socket_address.ts";
import { LogRateLimiter } from "../log/log_rate_limiter.ts";
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
import { CHALLENGE_BYTES, computeServerProof, verifyProof } from "./secret_proof.ts";

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
 * Challenges of one caller key. A caller needs one per node per authentication (up to three
 * when a flood pushes its challenge out), and a key is fresh per client process.
 */
export const CHALLENGES_PER_KEY: RateLimit = { burst: 5, perSecond: 1 };
/**
 * Challenges from one source address (an IPv6 /64), whatever the keys: a machine running a
 * script of many commands at once. Keys cost nothing to make, addresses do.
 */
export const CHALLENGES_PER_SOURCE: RateLimit = { burst: 40, perSecond: 20 };
/**
 * Challenges from everyone: a backstop that no single source reaches. It also bounds the
 * log lines of refused proofs.
 */
export const CHALLENGES_GLOBAL: RateLimit = { burst: 400, perSecond: 200 };
/** Warnings about refused proofs: a few in a burst, then one per 10 s (anyone can cause them). */
export const REFUSED_PROOF_LOG_LIMIT: RateLimit = { burst: 5, perSecond: 0.1 };
/** Keys and sources whose challenge rates are remembered; the least recently seen give way. */
export const CHALLENGE_SOURCES_MAX = 4096;

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
  /** `CHALLENGES_PER_KEY` */
  challengesPerKey: RateLimit;
  /** `CHALLENGES_PER_SOURCE` */
  challengesPerSource: RateLimit;
  /** `CHALLENGES_GLOBAL` */
  challengesGlobal: RateLimit;
}

const DEFAULT_LIMITS: SecretGateLimits = {
  challengesOutstandingMax: CHALLENGES_OUTSTANDING_MAX,
  challengeTtlMs: CHALLENGE_TTL_MS,
  authenticatedKeysMax: AUTHENTICATED_KEYS_MAX,
  authenticationTtlMs: AUTHENTICATION_TTL_MS,
  challengesPerKey: CHALLENGES_PER_KEY,
  challengesPerSource: CHALLENGES_PER_SOURCE,
  challengesGlobal: CHALLENGES_GLOBAL,
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
  /** Told of each warning about a refused proof that was suppressed (a metric). */
  onLogLineSuppressed?: () => void;
}

/** Issues challenges, checks proofs, and refuses callers that are neither members nor authenticated. */
export class SecretGate {
  readonly #options: SecretGateOptions;
  readonly #limits: SecretGateLimits;
  /** The outstanding challenge of each caller key. */
  readonly #challenges: ExpiringMap<string, Uint8Array>;
  /** Keys that proved the secret. */
  readonly #authenticated: ExpiringMap<string, true>;
  readonly #challengesByKey: SourceRateLimiter;
  readonly #challengesBySource: SourceRateLimiter;
  readonly #refusedLog: LogRateLimiter;

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
    this.#challengesByKey = new SourceRateLimiter({
      perSource: limits.challengesPerKey,
      sourcesMax: CHALLENGE_SOURCES_MAX,
      now,
    });
    this.#refusedLog = new LogRateLimiter({
      limit: REFUSED_PROOF_LOG_LIMIT,
      now,
      ...(options.onLogLineSuppressed === undefined
        ? {}
        : { onSuppressed: options.onLogLineSuppressed }),
    });
    this.#challengesBySource = new SourceRateLimiter({
      perSource: limits.challengesPerSource,
      global: limits.challengesGlobal,
      sourcesMax: CHALLENGE_SOURCES_MAX,
      now,
    });
  }

  /** Registers `cluster.challenge` and `cluster.authenticate` on `server`, open to anyone. */
  register(server: RpcRegistrar): void {
    server.register(CHALLENGE_RPC, (request, context) => this.#challenge(request.nonce, context));
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

  async #challenge(
    nonce: Uint8Array,
    caller: { remoteNodeId: string; remoteAddress: string | null },
  ): Promise<{ challenge: Uint8Array; serverProof: Uint8Array }> {
    const callerP2pNodeId = caller.remoteNodeId;
    this.#refuseRevoked(callerP2pNodeId);
    // A relayed caller has no address of its own here: its key stands for its source.
    const source = caller.remoteAddress === null
      ? `relayed ${callerP2pNodeId}`
      : sourceOfAddress(caller.remoteAddress);
    const byKey = this.#challengesByKey.tryTake(callerP2pNodeId);
    const taken = byKey.allowed ? this.#challengesBySource.tryTake(source) : byKey;
    if (!taken.allowed) {
      throw new RpcError(
        "overloaded",
        `too many challenges requested; retry in ${taken.retryAfterMs} ms`,
      );
    }
    const challenge = crypto.getRandomValues(new Uint8Array(CHALLENGE_BYTES));
    // A new challenge replaces the caller's previous one: one outstanding per key.
    this.#challenges.set(callerP2pNodeId, challenge);
    const serverProof = await computeServerProof(this.#options.secret, {
      nonce,
      callerP2pNodeId,
      serverP2pNodeId: this.#options.selfP2pNodeId,
    });
    return { challenge, serverProof };
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
      this.#refusedLog.write((suppressed) =>
        logger.warn(
          "P2P id {peer} failed to prove the cluster secret ({suppressed} similar lines " +
            "suppressed before this one)",
          { peer: callerP2pNodeId, suppressed },
        )
      );
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
