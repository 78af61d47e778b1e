/**
 * The `signature` of a `/bootstrap` answer (DESIGN.md sections 4 and 8). A node with a
 * cluster secret signs its answer, and a joiner or client with the secret refuses an answer
 * that is unsigned or signed otherwise, so a man in the middle of the plain HTTP request
 * cannot swap the P2P id (or addresses, or cluster id) for its own.
 *
 * `signature` is the lowercase hex of HMAC-SHA256(secret, canonical encoding), where the
 * canonical encoding is the UTF-8 bytes of
 *
 * ```
 * "blixard-bootstrap-v1\n" + JSON.stringify({
 *   node_id, p2p_node_id, p2p_addresses, p2p_relay_url, cluster_id, leader_id
 * })
 * ```
 *
 * with the keys in exactly that order, no whitespace, `cluster_id` and `leader_id` `null`
 * when absent, and the addresses in the canonical `ip:port` form that validation produces
 * (the signer signs the validated answer it serves; the verifier validates before it
 * verifies). Strings are escaped as ECMAScript `JSON.stringify` escapes them. The label
 * keeps these MACs apart from the proofs of `src/auth/secret_proof.ts`.
 *
 * A signature is not bound to a time: an old answer of the same node can be replayed, but it
 * names that node's own key, which is all a joiner trusts it for.
 *
 * @module
 */

import type { ClusterSecret } from "../auth/cluster_secret.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import type { BootstrapInfo } from "./bootstrap_info.ts";

/** The domain label at the start of the signed bytes. */
export const BOOTSTRAP_SIGNATURE_LABEL = "blixard-bootstrap-v1\n";

const SIGNATURE_FORMAT = /^[0-9a-f]{64}$/;
const encoder = new TextEncoder();

/** The canonical encoding of `info`'s fields other than `signature`, as text. */
export function canonicalBootstrapText(info: BootstrapInfo): string {
  return BOOTSTRAP_SIGNATURE_LABEL + JSON.stringify({
    node_id: info.node_id,
    p2p_node_id: info.p2p_node_id,
    p2p_addresses: info.p2p_addresses,
    p2p_relay_url: info.p2p_relay_url,
    cluster_id: info.cluster_id ?? null,
    leader_id: info.leader_id ?? null,
  });
}

/** `info` with its `signature` under `secret` (any signature it had is replaced). */
export async function signBootstrapInfo(
  info: BootstrapInfo,
  secret: ClusterSecret,
): Promise<BootstrapInfo> {
  const mac = await secret.sign(encoder.encode(canonicalBootstrapText(info)));
  return { ...info, signature: mac.toHex() };
}

/**
 * Checks that `info` (the validated answer of `peer`) is signed with `secret`. Throws
 * `BootstrapError` with reason `bad_signature` and field `signature` when it is unsigned or
 * signed with another secret, or was changed after it was signed.
 */
export async function verifyBootstrapSignature(
  info: BootstrapInfo,
  options: { secret: ClusterSecret; peer: string },
): Promise<void> {
  const refuse = (detail: string): never => {
    throw new BootstrapError(options.peer, "bad_signature", `/bootstrap ${detail}`, {
      field: "signature",
    });
  };
  if (info.signature === undefined) {
    refuse(
      "is not signed, but this side has a cluster secret: the peer has no secret configured, " +
        "or the answer was changed on the way",
    );
  }
  const signature = info.signature ?? "";
  const valid = SIGNATURE_FORMAT.test(signature) &&
    await options.secret.verify(
      encoder.encode(canonicalBootstrapText(info)),
      Uint8Array.fromHex(signature),
    );
  if (!valid) {
    refuse(
      "signature does not match this side's cluster secret: the cluster has another secret " +
        "(check --cluster-secret-file), or the answer was changed on the way",
    );
  }
}

/**
 * Signs a node's `/bootstrap` answers, keeping the last one: the answer changes only with the
 * addresses, the cluster id or the leader, so nearly every request is served the cached
 * signature without an HMAC (issue 9 item 4: serving `/bootstrap` must stay cheap).
 */
export class CachedBootstrapSigner {
  readonly #secret: ClusterSecret;
  #last: { text: string; signed: BootstrapInfo } | null = null;

  /** A signer under `secret`. */
  constructor(secret: ClusterSecret) {
    this.#secret = secret;
  }

  /** `info` with its signature, from the cache when `info` is the answer signed last. */
  async sign(info: BootstrapInfo): Promise<BootstrapInfo> {
    const text = canonicalBootstrapText(info);
    if (this.#last !== null && this.#last.text === text) return this.#last.signed;
    const signed = await signBootstrapInfo(info, this.#secret);
    this.#last = { text, signed };
    return signed;
  }
}
