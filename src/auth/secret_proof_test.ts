import assert from "node:assert/strict";
import { SecretKey } from "../transport/iroh.ts";
import { ClusterSecret } from "./cluster_secret.ts";
import {
  CHALLENGE_BYTES,
  computeProof,
  PROOF_LABEL,
  type ProofBinding,
  proofMessage,
  verifyProof,
} from "./secret_proof.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("the cluster secret of the test"));

function newKey(): string {
  return SecretKey.generate().public().toString();
}

function newBinding(): ProofBinding {
  return {
    challenge: crypto.getRandomValues(new Uint8Array(CHALLENGE_BYTES)),
    callerP2pNodeId: newKey(),
    serverP2pNodeId: newKey(),
  };
}

Deno.test("proofMessage() is the label, the challenge, the caller key and the server key, in that order", () => {
  const binding = newBinding();
  const message = proofMessage(binding);
  const label = encoder.encode(PROOF_LABEL);
  assert.equal(message.length, label.length + 32 + 32 + 32);
  assert.deepStrictEqual(message.subarray(0, label.length), label);
  let offset = label.length;
  for (
    const part of [
      binding.challenge,
      Uint8Array.fromHex(binding.callerP2pNodeId),
      Uint8Array.fromHex(binding.serverP2pNodeId),
    ]
  ) {
    assert.deepStrictEqual(message.subarray(offset, offset + 32), part);
    offset += 32;
  }
});

Deno.test("verifyProof() accepts the proof for its own binding", async () => {
  const binding = newBinding();
  const proof = await computeProof(SECRET, binding);
  assert.equal(await verifyProof(SECRET, { ...binding, proof }), true);
});

Deno.test("verifyProof() refuses a proof made for another challenge, caller, server or secret", async () => {
  const binding = newBinding();
  const proof = await computeProof(SECRET, binding);
  const otherChallenge = binding.challenge.slice();
  otherChallenge[31]! ^= 1;
  const elsewhere: [string, ProofBinding][] = [
    ["another challenge", { ...binding, challenge: otherChallenge }],
    ["another caller key (a proof used from another key)", {
      ...binding,
      callerP2pNodeId: newKey(),
    }],
    ["another server key (a proof replayed to another node)", {
      ...binding,
      serverP2pNodeId: newKey(),
    }],
    ["caller and server swapped", {
      ...binding,
      callerP2pNodeId: binding.serverP2pNodeId,
      serverP2pNodeId: binding.callerP2pNodeId,
    }],
  ];
  for (const [what, other] of elsewhere) {
    assert.equal(await verifyProof(SECRET, { ...other, proof }), false, what);
  }
  const otherSecret = await ClusterSecret.fromBytes(
    encoder.encode("the cluster secret of the tesT"),
  );
  assert.equal(await verifyProof(otherSecret, { ...binding, proof }), false, "another secret");
  assert.notDeepStrictEqual(await computeProof(otherSecret, binding), proof);
});

Deno.test("proofMessage() refuses a challenge of the wrong length and a P2P id that is not a key", () => {
  const binding = newBinding();
  assert.throws(() => proofMessage({ ...binding, challenge: new Uint8Array(31) }), /32 bytes/);
  assert.throws(
    () => proofMessage({ ...binding, serverP2pNodeId: "not-a-key" }),
    /Iroh endpoint ids/,
  );
});
