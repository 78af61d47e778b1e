/**
 * The proof that a caller holds the cluster secret (DESIGN.md section 8), given over a
 * `blixard/rpc/1` connection in answer to a fresh challenge from the node it calls:
 *
 * ```
 * proof = HMAC-SHA256(secret, "blixard-auth-v1" ‖ challenge ‖ caller key ‖ server key)
 * ```
 *
 * `"blixard-auth-v1"` is 15 ASCII bytes, the challenge 32 random bytes, and each key the 32
 * bytes of an Iroh public key (the P2P id is their lowercase hex). Every part has a fixed
 * length, so the concatenation is unambiguous. Binding both keys means that a proof is
 * worth nothing elsewhere: a node that received it cannot replay it to another node (the
 * server key differs), and nobody can use it from another key (the caller key differs); the
 * QUIC handshake has already proven that the caller owns its key. The label keeps these
 * MACs apart from every other use of the secret (the `/bootstrap` signature has its own).
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { isValidEndpointId } from "../transport/iroh.ts";
import type { ClusterSecret } from "./cluster_secret.ts";

/** Bytes of a challenge. */
export const CHALLENGE_BYTES = 32;
/** The domain label at the start of every proof's message. */
export const PROOF_LABEL = "blixard-auth-v1";

const PUBLIC_KEY_BYTES = 32;
const LABEL_BYTES = new TextEncoder().encode(PROOF_LABEL);

/** What a proof is bound to. */
export interface ProofBinding {
  /** The challenge the server issued. */
  challenge: Uint8Array;
  /** The P2P id of the caller, who proves the secret. */
  callerP2pNodeId: string;
  /** The P2P id of the server, who issued the challenge. */
  serverP2pNodeId: string;
}

/** The bytes a proof is the HMAC of. */
export function proofMessage(binding: ProofBinding): Uint8Array {
  // The RPC schemas admit only challenges of this length.
  assert(binding.challenge.length === CHALLENGE_BYTES, "a challenge has 32 bytes", {
    detail: () => `length=${binding.challenge.length}`,
  });
  const message = new Uint8Array(LABEL_BYTES.length + CHALLENGE_BYTES + 2 * PUBLIC_KEY_BYTES);
  let offset = 0;
  for (
    const part of [
      LABEL_BYTES,
      binding.challenge,
      publicKeyBytes(binding.callerP2pNodeId),
      publicKeyBytes(binding.serverP2pNodeId),
    ]
  ) {
    message.set(part, offset);
    offset += part.length;
  }
  return message;
}

/** The caller's proof for `binding`. */
export async function computeProof(
  secret: ClusterSecret,
  binding: ProofBinding,
): Promise<Uint8Array> {
  return await secret.sign(proofMessage(binding));
}

/** Whether `proof` is the proof for `binding` under `secret` (constant-time comparison). */
export async function verifyProof(
  secret: ClusterSecret,
  binding: ProofBinding & { proof: Uint8Array },
): Promise<boolean> {
  return await secret.verify(proofMessage(binding), binding.proof);
}

function publicKeyBytes(p2pNodeId: string): Uint8Array {
  // Keys come from authenticated connections, never from a request body.
  assert(isValidEndpointId(p2pNodeId), "a proof binds Iroh endpoint ids", {
    detail: () => `p2pNodeId=${JSON.stringify(p2pNodeId.slice(0, 80))}`,
  });
  return Uint8Array.fromHex(p2pNodeId);
}
