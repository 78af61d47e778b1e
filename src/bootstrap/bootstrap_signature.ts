/**
 * The `signature` of a `/bootstrap` answer (DESIGN.md sections 4 and 8). A node with a
 * cluster secret signs its answer, and a joiner or client with the secret refuses an answer
 * that is unsigned, signed otherwise, or stale, so that a man in the middle of the plain HTTP
 * request cannot swap the P2P id (or addresses, or cluster id) for its own, and a recorded
 * answer does not stay valid for ever.
 *
 * The signature is a timed signature (`src/auth/timed_signature.ts`) with the label
 * `blixard-bootstrap-v2`, the answer's `issued_at_ms` and `valid_for_ms`, and as payload the
 * canonical encoding
 *
 * ```
 * JSON.stringify({ node_id, p2p_node_id, p2p_addresses, p2p_relay_url, cluster_id, leader_id })
 * ```
 *
 * with the keys in exactly that order, no whitespace, `cluster_id` and `leader_id` `null`
 * when absent, and the addresses in the canonical `ip:port` form that validation produces
 * (the signer signs the validated answer it serves; the verifier validates before it
 * verifies). Strings are escaped as ECMAScript `JSON.stringify` escapes them.
 *
 * A replayed answer within its window names the node's own key; the mutual proof of the
 * secret (`src/auth/secret_proof.ts`) is what keeps an impostor holding a retired member's
 * key from being trusted in that window.
 *
 * @module
 */

import type { ClusterSecret } from "../auth/cluster_secret.ts";
import { signTimed, type TimedSignatureFault, verifyTimed } from "../auth/timed_signature.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import type { BootstrapInfo } from "./bootstrap_info.ts";

/** The label of the `/bootstrap` signature (`timed_signature.ts`). */
export const BOOTSTRAP_SIGNATURE_LABEL = "blixard-bootstrap-v2";
/** How long a signed `/bootstrap` answer stays valid after it was issued. */
export const BOOTSTRAP_SIGNATURE_VALIDITY_MS = 5 * 60_000;
/** How old a cached signed answer may be before the node signs it afresh. */
export const BOOTSTRAP_SIGNATURE_REFRESH_MS = 30_000;

/** The canonical encoding of `info`'s signed fields other than its time, as text. */
export function canonicalBootstrapText(info: BootstrapInfo): string {
  return JSON.stringify({
    node_id: info.node_id,
    p2p_node_id: info.p2p_node_id,
    p2p_addresses: info.p2p_addresses,
    p2p_relay_url: info.p2p_relay_url,
    cluster_id: info.cluster_id ?? null,
    leader_id: info.leader_id ?? null,
  });
}

/** Options of {@linkcode signBootstrapInfo}. */
export interface SignBootstrapOptions {
  /** The issue time, in Unix milliseconds (default: now). */
  nowMs?: number;
  /** Validity (default `BOOTSTRAP_SIGNATURE_VALIDITY_MS`). */
  validForMs?: number;
}

/** `info` with its issue time, validity and `signature` under `secret` (replacing any). */
export async function signBootstrapInfo(
  info: BootstrapInfo,
  secret: ClusterSecret,
  options: SignBootstrapOptions = {},
): Promise<BootstrapInfo> {
  const issuedAtMs = options.nowMs ?? Date.now();
  const validForMs = options.validForMs ?? BOOTSTRAP_SIGNATURE_VALIDITY_MS;
  const signature = await signTimed(secret, {
    label: BOOTSTRAP_SIGNATURE_LABEL,
    payload: canonicalBootstrapText(info),
    issuedAtMs,
    validForMs,
  });
  return { ...info, issued_at_ms: issuedAtMs, valid_for_ms: validForMs, signature };
}

const FAULT_DETAILS: Record<TimedSignatureFault, string> = {
  bad_signature: "signature does not match this side's cluster secret: the cluster has another " +
    "secret (check --cluster-secret-file), or the answer was changed on the way",
  expired: "signature has expired: the answer was recorded and replayed, or the clocks of the " +
    "peer and this machine differ by minutes (check NTP)",
  not_yet_valid: "signature is issued in the future: the clocks of the peer and this machine " +
    "differ by minutes (check NTP)",
  validity_too_long: "signature claims a validity longer than any node gives",
};

/**
 * Checks that `info` (the validated answer of `peer`) is signed with `secret` and valid at
 * `nowMs` (Unix milliseconds, default now). Throws `BootstrapError` with reason
 * `bad_signature` and field `signature` when it is unsigned, signed with another secret,
 * changed after it was signed, or outside its validity window.
 */
export async function verifyBootstrapSignature(
  info: BootstrapInfo,
  options: { secret: ClusterSecret; peer: string; nowMs?: number },
): Promise<void> {
  const refuse = (detail: string): never => {
    throw new BootstrapError(options.peer, "bad_signature", `/bootstrap ${detail}`, {
      field: "signature",
    });
  };
  if (
    info.signature === undefined || info.issued_at_ms === undefined ||
    info.valid_for_ms === undefined
  ) {
    refuse(
      "is not signed, but this side has a cluster secret: the peer has no secret configured, " +
        "or runs an older version, or the answer was changed on the way",
    );
  }
  const fault = await verifyTimed(options.secret, {
    label: BOOTSTRAP_SIGNATURE_LABEL,
    payload: canonicalBootstrapText(info),
    issuedAtMs: info.issued_at_ms ?? 0,
    validForMs: info.valid_for_ms ?? 0,
    signature: info.signature ?? "",
    nowMs: options.nowMs ?? Date.now(),
  });
  if (fault !== null) refuse(FAULT_DETAILS[fault]);
}

/**
 * Signs a node's `/bootstrap` answers, keeping the last one: the answer changes only with the
 * addresses, the cluster id or the leader, so nearly every request is served the cached
 * signature without an HMAC (issue 9 item 4: serving `/bootstrap` must stay cheap). A cached
 * answer is signed afresh once it is `BOOTSTRAP_SIGNATURE_REFRESH_MS` old, well within its
 * validity.
 */
export class CachedBootstrapSigner {
  readonly #secret: ClusterSecret;
  readonly #now: () => number;
  #last: { text: string; signed: BootstrapInfo; signedAtMs: number } | null = null;

  /** A signer under `secret`; `now` is the wall clock in Unix milliseconds (tests inject one). */
  constructor(secret: ClusterSecret, now: () => number = Date.now) {
    this.#secret = secret;
    this.#now = now;
  }

  /** `info` with its signature, from the cache when `info` is the answer signed last, lately. */
  async sign(info: BootstrapInfo): Promise<BootstrapInfo> {
    const text = canonicalBootstrapText(info);
    const nowMs = this.#now();
    const last = this.#last;
    const fresh = last !== null && nowMs - last.signedAtMs < BOOTSTRAP_SIGNATURE_REFRESH_MS &&
      nowMs >= last.signedAtMs;
    if (fresh && last.text === text) return last.signed;
    const signed = await signBootstrapInfo(info, this.#secret, { nowMs });
    this.#last = { text, signed, signedAtMs: nowMs };
    return signed;
  }
}
