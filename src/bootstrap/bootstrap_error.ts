/**
 * How finding a seed fails: `BootstrapError` for one attempt at one peer (its message
 * names the peer and, for a bad `/bootstrap` answer, the field), and `SeedNotFoundError`
 * when no peer answered and verified before the join timeout.
 *
 * @module
 */

/** Why one attempt at one peer failed. */
export type BootstrapFailureReason =
  /** A `--peers` entry is not `host:port`, an http(s) URL or `dns:NAME`. */
  | "invalid_peer_entry"
  /** A `dns:NAME` entry did not resolve to any usable TXT record. */
  | "dns_failed"
  /** No TCP connection to the peer's HTTP port. */
  | "unreachable"
  /** The `/bootstrap` answer did not arrive before the attempt's deadline. */
  | "timeout"
  /** `/bootstrap` answered with a status other than 200 (and not 429). */
  | "http_status"
  /** `/bootstrap` answered 429: the peer limits requests. */
  | "rate_limited"
  /** The body exceeded the size limit. */
  | "body_too_large"
  /** The body is not UTF-8 JSON. */
  | "not_json"
  /** A field of `BootstrapInfo` is missing, unknown, or has a bad value. */
  | "invalid_field"
  /** The P2P connect to the advertised id and addresses failed. */
  | "p2p_unreachable"
  /** The P2P connect or the ping did not finish before the attempt's deadline. */
  | "p2p_timeout"
  /** The P2P key or node id the peer proved differs from what `/bootstrap` advertised. */
  | "wrong_identity"
  /** The peer answered ping with an error or a malformed response. */
  | "ping_failed"
  /**
   * This side has a cluster secret and the `/bootstrap` answer is unsigned or its
   * `signature` does not verify with it (DESIGN.md section 8).
   */
  | "bad_signature";

/**
 * The label of `blixard_bootstrap_fetches_total{outcome}` (`BOOTSTRAP_FETCH_OUTCOMES` in
 * `src/http/metrics.ts`, repeated here because bootstrap must not depend on http).
 */
export type BootstrapOutcome =
  | "ok"
  | "unreachable"
  | "timeout"
  | "http_error"
  | "rate_limited"
  | "invalid"
  | "wrong_identity"
  | "bad_signature";

const OUTCOME_OF_REASON: Record<BootstrapFailureReason, BootstrapOutcome> = {
  invalid_peer_entry: "invalid",
  dns_failed: "unreachable",
  unreachable: "unreachable",
  timeout: "timeout",
  http_status: "http_error",
  rate_limited: "rate_limited",
  body_too_large: "invalid",
  not_json: "invalid",
  invalid_field: "invalid",
  p2p_unreachable: "unreachable",
  p2p_timeout: "timeout",
  wrong_identity: "wrong_identity",
  ping_failed: "invalid",
  bad_signature: "bad_signature",
};

/** Options of a {@linkcode BootstrapError}. */
export interface BootstrapErrorOptions {
  /** The `BootstrapInfo` field at fault, e.g. `"p2p_node_id"` or `"p2p_addresses[1]"`. */
  field?: string;
  /** The lower-level error. */
  cause?: unknown;
}

/** One failed attempt at one peer. The message is one line: `peer <peer>: <what failed>`. */
export class BootstrapError extends Error {
  override name = "BootstrapError";
  /** The peer as the operator wrote it (`host:port`, URL, or a record of `dns:NAME`). */
  readonly peer: string;
  /** Why the attempt failed. */
  readonly reason: BootstrapFailureReason;
  /** The `BootstrapInfo` field at fault, or `null`. */
  readonly field: string | null;

  /** `detail` says what failed; the message prefixes it with the peer. */
  constructor(
    peer: string,
    reason: BootstrapFailureReason,
    detail: string,
    options?: BootstrapErrorOptions,
  ) {
    super(`peer ${peer}: ${detail}`, options?.cause === undefined ? {} : { cause: options.cause });
    this.peer = peer;
    this.reason = reason;
    this.field = options?.field ?? null;
  }

  /** The metric label for this failure. */
  get outcome(): BootstrapOutcome {
    return OUTCOME_OF_REASON[this.reason];
  }
}

/** No peer answered and verified before the join timeout; `failures` has the last per peer. */
export class SeedNotFoundError extends Error {
  override name = "SeedNotFoundError";
  /** The last failure of each peer, in the order of `--peers`. */
  readonly failures: readonly BootstrapError[];

  /** `failures` holds one error per peer that was tried. */
  constructor(
    failures: readonly BootstrapError[],
    options: { joinTimeoutMs: number; rounds: number },
  ) {
    super(
      `no seed found within the join timeout of ${options.joinTimeoutMs} ms ` +
        `(${options.rounds} ${options.rounds === 1 ? "round" : "rounds"}); last failures: ` +
        (failures.length === 0 ? "none" : failures.map((failure) => failure.message).join("; ")),
    );
    this.failures = failures;
  }
}
