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
 * The proof runs both ways (issue 9 item 3). Before it sends anything but `ping`, the caller
 * asks for its challenge with a fresh random nonce of its own, and the server answers with
 * its proof over that nonce:
 *
 * ```
 * serverProof = HMAC-SHA256(secret, "blixard-server-auth-v1" ‖ nonce ‖ caller key ‖ server key)
 * ```
 *
 * A node that holds a member's (or a retired member's) key but not the secret cannot make
 * it, so a caller never gives its requests (writes, reads, joins) to an impostor. The
 * distinct label keeps a server proof from ever passing as a caller's proof, and back.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { isValidEndpointId } from "../transport/iroh.ts";
import type { ClusterSecret } from "./cluster_secret.ts";

/** Bytes of a challenge. */
export const CHALLENGE_BYTES = 32;
/** The domain label at the start of every caller's proof's message. */
export const PROOF_LABEL = "blixard-auth-v1";
/** The domain label at the start of every server's proof's message. */
export const SERVER_PROOF_LABEL = "blixard-server-auth-v1";
/** Bytes of the nonce a caller sends with its request for a challenge. */
export const NONCE_BYTES = 32;

const PUBLIC_KEY_BYTES = 32;
const LABEL_BYTES = new TextEncoder().encode(PROOF_LABEL);
const SERVER_LABEL_BYTES = new TextEncoder().encode(SERVER_PROOF_LABEL);

/** What a proof is bound to. */
export interface ProofBinding {
  /** The challenge the server issued. */
  challenge: Uint8Array;
  /** The P2P id of the caller, who proves the secret. */
  callerP2pNodeId: string;
  /** The P2P id of the server, who issued the challenge. */
  serverP2pNodeId: string;
}

/** The bytes a caller's proof is the HMAC of. */
export function proofMessage(binding: ProofBinding): Uint8Array {
  return boundMessage(LABEL_BYTES, binding.challenge, binding);
}

/** The bytes a server's proof is the HMAC of: the caller's nonce in place of the challenge. */
export function serverProofMessage(binding: ServerProofBinding): Uint8Array {
  return boundMessage(SERVER_LABEL_BYTES, binding.nonce, binding);
}

/** What a server's proof is bound to. */
export interface ServerProofBinding {
  /** The nonce the caller sent. */
  nonce: Uint8Array;
  /** The P2P id of the caller, who sent the nonce. */
  callerP2pNodeId: string;
  /** The P2P id of the server, who proves the secret. */
  serverP2pNodeId: string;
}

/** The server's proof for `binding`. */
export async function computeServerProof(
  secret: ClusterSecret,
  binding: ServerProofBinding,
): Promise<Uint8Array> {
  return await secret.sign(serverProofMessage(binding));
}

/** Whether `proof` is the server's proof for `binding` under `secret` (constant time). */
export async function verifyServerProof(
  secret: ClusterSecret,
  binding: ServerProofBinding & { proof: Uint8Array },
): Promise<boolean> {
  return await secret.verify(serverProofMessage(binding), binding.proof);
}

function boundMessage(
  label: Uint8Array,
  fresh: Uint8Array,
  keys: { callerP2pNodeId: string; serverP2pNodeId: string },
): Uint8Array {
  // The RPC schemas admit only challenges and nonces of this length.
  assert(fresh.length === CHALLENGE_BYTES, "a challenge or nonce has 32 bytes", {
    detail: () => `length=${fresh.length}`,
  });
  const message = new Uint8Array(label.length + CHALLENGE_BYTES + 2 * PUBLIC_KEY_BYTES);
  let offset = 0;
  for (
    const part of [
      label,
      fresh,
      publicKeyBytes(keys.callerP2pNodeId),
      publicKeyBytes(keys.serverP2pNodeId),
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
