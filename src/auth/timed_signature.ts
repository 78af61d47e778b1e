/**
 * Signatures under the cluster secret that carry an issue time and a validity window
 * (DESIGN.md section 8; issue 9 item 3), for anything a node publishes in the open and a
 * holder of the secret must be able to trust: the `/bootstrap` answer, and mDNS TXT records.
 * Without a time, a recorded answer stays valid for ever, long after the key it names was
 * retired.
 *
 * The signed bytes are the UTF-8 of
 *
 * ```
 * label + "\n" + issuedAtMs + "\n" + validForMs + "\n" + payload
 * ```
 *
 * with the two numbers as decimal integers (Unix milliseconds, and milliseconds). Each use
 * has its own label (no `\n` in it), which keeps its MACs apart from every other use of the
 * secret; the label and the numbers contain no `\n`, so the encoding is unambiguous. The MAC
 * is HMAC-SHA256, carried as 64 lowercase hex characters.
 *
 * A verifier accepts a signature whose window `[issuedAtMs, issuedAtMs + validForMs]`,
 * widened by `CLOCK_SKEW_MS` on both sides (the issuer's and the verifier's clocks differ),
 * holds its own current time, and whose `validForMs` is at most `VALIDITY_MS_MAX`, so that
 * an issuer cannot mint answers that never expire.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import type { ClusterSecret } from "./cluster_secret.ts";

/** Longest validity a verifier accepts. */
export const VALIDITY_MS_MAX = 60 * 60_000;
/** How far the issuer's clock may be from the verifier's. */
export const CLOCK_SKEW_MS = 60_000;

const SIGNATURE_FORMAT = /^[0-9a-f]{64}$/;
const LABEL_FORMAT = /^[a-z0-9.-]{1,64}$/;
const encoder = new TextEncoder();

/** What a timed signature covers besides the secret. */
export interface TimedSignatureFields {
  /** The use's own label, e.g. `"blixard-bootstrap-v2"`: lowercase, digits, `.` and `-`. */
  label: string;
  /** The text being signed (its canonical encoding). */
  payload: string;
  /** When it was signed, in Unix milliseconds. */
  issuedAtMs: number;
  /** How long after `issuedAtMs` it stays valid. */
  validForMs: number;
}

/** Why a timed signature is refused. */
export type TimedSignatureFault =
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "validity_too_long";

/** The bytes a timed signature is the HMAC of. */
export function timedSignatureMessage(fields: TimedSignatureFields): Uint8Array {
  assert(LABEL_FORMAT.test(fields.label), "a signature label is a short word without newlines", {
    detail: () => `label=${JSON.stringify(fields.label)}`,
  });
  return encoder.encode(
    `${fields.label}\n${fields.issuedAtMs}\n${fields.validForMs}\n${fields.payload}`,
  );
}

/** The lowercase hex HMAC of `fields` under `secret`. */
export async function signTimed(
  secret: ClusterSecret,
  fields: TimedSignatureFields,
): Promise<string> {
  assert(Number.isSafeInteger(fields.issuedAtMs) && fields.issuedAtMs >= 0, "issuedAtMs >= 0");
  assert(
    Number.isSafeInteger(fields.validForMs) && fields.validForMs >= 1 &&
      fields.validForMs <= VALIDITY_MS_MAX,
    "1 <= validForMs <= VALIDITY_MS_MAX",
  );
  return (await secret.sign(timedSignatureMessage(fields))).toHex();
}

/**
 * Checks `signature` over `fields` under `secret` at the verifier's time `nowMs` (Unix
 * milliseconds). Returns `null` when it holds, else why not. The window is checked after
 * the MAC, so that an unsigned stranger learns nothing from the answer.
 */
export async function verifyTimed(
  secret: ClusterSecret,
  fields: TimedSignatureFields & { signature: string; nowMs: number },
): Promise<TimedSignatureFault | null> {
  const wellFormed = SIGNATURE_FORMAT.test(fields.signature) &&
    Number.isSafeInteger(fields.issuedAtMs) && fields.issuedAtMs >= 0 &&
    Number.isSafeInteger(fields.validForMs) && fields.validForMs >= 1;
  if (!wellFormed) return "bad_signature";
  const valid = await secret.verify(
    timedSignatureMessage(fields),
    Uint8Array.fromHex(fields.signature),
  );
  if (!valid) return "bad_signature";
  if (fields.validForMs > VALIDITY_MS_MAX) return "validity_too_long";
  if (fields.nowMs < fields.issuedAtMs - CLOCK_SKEW_MS) return "not_yet_valid";
  if (fields.nowMs > fields.issuedAtMs + fields.validForMs + CLOCK_SKEW_MS) return "expired";
  return null;
}
