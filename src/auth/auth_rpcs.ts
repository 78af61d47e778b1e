/**
 * The two `blixard/rpc/1` methods of authentication (DESIGN.md section 8), served only by
 * a node that has a cluster secret:
 *
 * 1. `cluster.challenge` `{ nonce }` → `{ challenge, serverProof }`: 32 fresh random bytes
 *    for the caller's key, valid once and for a short time, and the server's proof of the
 *    secret over the caller's own fresh nonce (`secret_proof.ts`), which the caller checks
 *    before it sends anything else;
 * 2. `cluster.authenticate` `{ challenge, proof }` → `{ validForMs }`: the proof of
 *    `secret_proof.ts`; on success the node treats the caller's key as authenticated for
 *    `validForMs`. Errors: `challenge_expired` (ask for a new one), `secret_refused`.
 *
 * The caller's own error `server_unproven` says that the node it called did not prove the
 * secret: it has none (it answered `unknown_method`), or another one, or is an impostor.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { defineRpc } from "../transport/rpc.ts";
import { MAC_BYTES } from "./cluster_secret.ts";
import { CHALLENGE_BYTES, NONCE_BYTES } from "./secret_proof.ts";

const exactBytes = (length: number) =>
  z.custom<Uint8Array>((value) => value instanceof Uint8Array, "expected bytes").check(
    z.refine((value) => value.length === length, `exactly ${length} bytes`),
  );

/** `cluster.challenge`: a fresh challenge for the caller's key, and the server's proof. */
export const CHALLENGE_RPC = defineRpc({
  method: "cluster.challenge",
  request: () => z.strictObject({ nonce: exactBytes(NONCE_BYTES) }),
  response: () =>
    z.strictObject({
      challenge: exactBytes(CHALLENGE_BYTES),
      serverProof: exactBytes(MAC_BYTES),
    }),
});

/** `cluster.authenticate`: prove the secret for the challenge; the caller's key is then let in. */
export const AUTHENTICATE_RPC = defineRpc({
  method: "cluster.authenticate",
  request: () =>
    z.strictObject({
      challenge: exactBytes(CHALLENGE_BYTES),
      proof: exactBytes(MAC_BYTES),
    }),
  response: () => z.strictObject({ validForMs: z.int().check(z.positive()) }),
});

/** The error code of a call refused because the caller is neither member nor authenticated. */
export const UNAUTHENTICATED = "unauthenticated";
/** The error code of a proof that does not match the node's secret. */
export const SECRET_REFUSED = "secret_refused";
/** The caller's error code when the node it called did not prove the cluster secret. */
export const SERVER_UNPROVEN = "server_unproven";
/** The error code of an authentication whose challenge is unknown, used or expired. */
export const CHALLENGE_EXPIRED = "challenge_expired";

/**
 * The error code of a call from a removed member's key: revoked cluster-wide when its
 * removal was applied, whatever it proves. Only a new key (a new data dir) may join again.
 */
export const REVOKED = "revoked";
/** What a node answers a revoked key, with `REVOKED`. */
export const REVOKED_MESSAGE = "this P2P key belongs to a member that was removed from the " +
  "cluster and is revoked: to add this machine again, start it with an empty --data-dir";

/** What a node without the caller's authentication answers, with `UNAUTHENTICATED`. */
export const UNAUTHENTICATED_MESSAGE =
  "this cluster requires the cluster secret: pass --cluster-secret-file " +
  "(or set BLIXARD_CLUSTER_SECRET_FILE or BLIXARD_CLUSTER_SECRET)";
