/**
 * The `sig=` of an mDNS advert: with a cluster secret, a node signs the fields of its TXT
 * record with the same HMAC-SHA256 key as its `/bootstrap` answer, under a label of its own
 * so that a MAC made for one can never pass for the other (nor for the proofs of
 * `src/auth/secret_proof.ts`). `sig` is the lowercase hex of HMAC-SHA256(secret, UTF-8 of
 *
 * ```
 * "blixard-mdns-v1\n" + JSON.stringify({ cluster, node, p2p, addrs, http, t })
 * ```
 *
 * with the keys in that order, `cluster` `""` while in none and `addrs` the array of
 * canonical addresses. `t` is when it was signed (Unix ms): a verifier refuses a record
 * signed more than `ADVERT_SIGNATURE_AGE_MAX_MS` ago or more than
 * `ADVERT_CLOCK_SKEW_MAX_MS` ahead, so a recorded advert cannot be replayed for ever, and
 * a node signs afresh long before its own record would go stale. This assumes the nodes'
 * clocks agree within minutes (docs/operations.md).
 *
 * @module
 */

import type { ClusterSecret } from "../auth/cluster_secret.ts";
import type { Advert } from "./advert.ts";

/** The domain label at the start of the signed bytes. */
export const ADVERT_SIGNATURE_LABEL = "blixard-mdns-v1\n";
/** Oldest signature accepted. */
export const ADVERT_SIGNATURE_AGE_MAX_MS = 10 * 60_000;
/** How far in the future a signature may be (clocks differ a little). */
export const ADVERT_CLOCK_SKEW_MAX_MS = 60_000;
/** A node signs its record again once its signature is this old. */
export const ADVERT_RESIGN_AFTER_MS = 60_000;

const encoder = new TextEncoder();

/** Why a signed advert is refused. */
export type AdvertSignatureRejection = "unsigned" | "bad_signature" | "stale";

/** The bytes that `sig` covers: every field but `sig`. */
export function canonicalAdvertText(advert: Advert): string {
  return ADVERT_SIGNATURE_LABEL + JSON.stringify({
    cluster: advert.clusterId ?? "",
    node: advert.nodeId,
    p2p: advert.p2pNodeId,
    addrs: advert.addresses,
    http: advert.httpPort,
    t: advert.issuedAtMs,
  });
}

/** `advert` signed with `secret` at `nowMs` (any earlier `t` and `sig` are replaced). */
export async function signAdvert(
  advert: Advert,
  options: { secret: ClusterSecret; nowMs: number },
): Promise<Advert> {
  const stamped = { ...advert, issuedAtMs: Math.floor(options.nowMs), signature: null };
  const mac = await options.secret.sign(encoder.encode(canonicalAdvertText(stamped)));
  return { ...stamped, signature: mac.toHex() };
}

/** `null` when `advert` is signed with `secret` within the validity window, else why not. */
export async function checkAdvertSignature(
  advert: Advert,
  options: { secret: ClusterSecret; nowMs: number },
): Promise<AdvertSignatureRejection | null> {
  if (advert.signature === null || advert.issuedAtMs === null) return "unsigned";
  const valid = await options.secret.verify(
    encoder.encode(canonicalAdvertText(advert)),
    Uint8Array.fromHex(advert.signature),
  );
  if (!valid) return "bad_signature";
  const ageMs = options.nowMs - advert.issuedAtMs;
  return ageMs > ADVERT_SIGNATURE_AGE_MAX_MS || ageMs < -ADVERT_CLOCK_SKEW_MAX_MS ? "stale" : null;
}
