import assert from "node:assert/strict";
import { ClusterSecret } from "../auth/cluster_secret.ts";
import { SecretKey } from "../transport/iroh.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import { type BootstrapInfo, parseBootstrapInfo } from "./bootstrap_info.ts";
import { CLOCK_SKEW_MS } from "../auth/timed_signature.ts";
import {
  BOOTSTRAP_SIGNATURE_REFRESH_MS,
  BOOTSTRAP_SIGNATURE_VALIDITY_MS,
  CachedBootstrapSigner,
  canonicalBootstrapText,
  signBootstrapInfo,
  verifyBootstrapSignature,
} from "./bootstrap_signature.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("the cluster secret of the test"));
const OTHER_SECRET = await ClusterSecret.fromBytes(
  encoder.encode("another secret, also 30 bytes!"),
);
const PEER = "127.0.0.1:7001";
const KEY = SecretKey.generate().public().toString();

const INFO: BootstrapInfo = {
  node_id: 1,
  p2p_node_id: KEY,
  p2p_addresses: ["127.0.0.1:7001", "[::1]:7001"],
  p2p_relay_url: null,
  cluster_id: "c-1",
  leader_id: 2,
};

function isBadSignature(detail: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof BootstrapError && error.reason === "bad_signature" &&
    error.outcome === "bad_signature" && error.field === "signature" &&
    error.message.startsWith(`peer ${PEER}: /bootstrap `) && detail.test(error.message);
}

Deno.test("canonicalBootstrapText() is the fields as JSON in a fixed order, absent ones null", () => {
  assert.equal(
    canonicalBootstrapText(INFO),
    `{"node_id":1,"p2p_node_id":"${KEY}","p2p_addresses":["127.0.0.1:7001","[::1]:7001"],` +
      `"p2p_relay_url":null,"cluster_id":"c-1","leader_id":2}`,
  );
  // The order of the answer's own keys does not matter, nor does null versus absent.
  const reordered = JSON.parse(
    JSON.stringify({
      leader_id: null,
      p2p_relay_url: null,
      node_id: 1,
      p2p_node_id: KEY,
      p2p_addresses: [],
    }),
  );
  assert.equal(
    canonicalBootstrapText(reordered),
    canonicalBootstrapText({ ...reordered, cluster_id: null }),
  );
  assert.match(canonicalBootstrapText(reordered), /"cluster_id":null,"leader_id":null}$/);
});

Deno.test("verifyBootstrapSignature() accepts a signed answer after it crossed the wire as JSON", async () => {
  const signed = await signBootstrapInfo(INFO, SECRET);
  assert.match(signed.signature ?? "", /^[0-9a-f]{64}$/);
  const received = parseBootstrapInfo(JSON.stringify(signed), PEER);
  await verifyBootstrapSignature(received, { secret: SECRET, peer: PEER });
});

Deno.test("verifyBootstrapSignature() refuses an answer with any signed field changed", async () => {
  const signed = await signBootstrapInfo(INFO, SECRET);
  const changes: Partial<BootstrapInfo>[] = [
    { node_id: 3 },
    { p2p_node_id: SecretKey.generate().public().toString() },
    { p2p_addresses: ["127.0.0.1:7666"] },
    { p2p_addresses: ["[::1]:7001", "127.0.0.1:7001"] },
    { p2p_relay_url: "https://relay.example" },
    { cluster_id: "c-2" },
    { cluster_id: null },
    { leader_id: 1 },
    { issued_at_ms: (signed.issued_at_ms ?? 0) + 1 },
    { valid_for_ms: (signed.valid_for_ms ?? 0) + 1 },
  ];
  for (const change of changes) {
    await assert.rejects(
      verifyBootstrapSignature({ ...signed, ...change }, { secret: SECRET, peer: PEER }),
      isBadSignature(/signature does not match this side's cluster secret/),
      JSON.stringify(change),
    );
  }
});

Deno.test("verifyBootstrapSignature() refuses an unsigned answer, another secret's signature and a malformed one", async () => {
  await assert.rejects(
    verifyBootstrapSignature(INFO, { secret: SECRET, peer: PEER }),
    isBadSignature(/is not signed, but this side has a cluster secret/),
  );
  const signedOtherwise = await signBootstrapInfo(INFO, OTHER_SECRET);
  await assert.rejects(
    verifyBootstrapSignature(signedOtherwise, { secret: SECRET, peer: PEER }),
    isBadSignature(/does not match/),
  );
  const signed = await signBootstrapInfo(INFO, SECRET);
  for (const signature of [signed.signature!.toUpperCase(), signed.signature!.slice(2), "zz"]) {
    await assert.rejects(
      verifyBootstrapSignature({ ...signed, signature }, { secret: SECRET, peer: PEER }),
      isBadSignature(/does not match/),
      signature,
    );
  }
});

Deno.test("signBootstrapInfo() replaces a signature the answer already had", async () => {
  const nowMs = Date.now();
  const once = await signBootstrapInfo(INFO, OTHER_SECRET, { nowMs: nowMs - 1000 });
  const twice = await signBootstrapInfo(once, SECRET, { nowMs });
  assert.deepStrictEqual(twice, await signBootstrapInfo(INFO, SECRET, { nowMs }));
});

Deno.test("verifyBootstrapSignature() refuses a recorded answer once its validity window has passed", async () => {
  const issuedAtMs = Date.now();
  const signed = await signBootstrapInfo(INFO, SECRET, { nowMs: issuedAtMs });
  assert.equal(signed.valid_for_ms, BOOTSTRAP_SIGNATURE_VALIDITY_MS);
  const late = issuedAtMs + BOOTSTRAP_SIGNATURE_VALIDITY_MS + CLOCK_SKEW_MS + 1;
  await verifyBootstrapSignature(signed, { secret: SECRET, peer: PEER, nowMs: late - 2 });
  await assert.rejects(
    verifyBootstrapSignature(signed, { secret: SECRET, peer: PEER, nowMs: late }),
    isBadSignature(/signature has expired: the answer was recorded and replayed/),
  );
  await assert.rejects(
    verifyBootstrapSignature(signed, {
      secret: SECRET,
      peer: PEER,
      nowMs: issuedAtMs - CLOCK_SKEW_MS - 1,
    }),
    isBadSignature(/issued in the future/),
  );
  const { issued_at_ms: _issued, ...untimed } = signed;
  await assert.rejects(
    verifyBootstrapSignature(untimed, { secret: SECRET, peer: PEER }),
    isBadSignature(/is not signed/),
  );
});

Deno.test("CachedBootstrapSigner signs again only when the answer changed", async () => {
  let signatures = 0;
  const counting = {
    sign: (bytes: Uint8Array) => {
      signatures++;
      return SECRET.sign(bytes);
    },
  } as unknown as ClusterSecret;
  const clock = { nowMs: Date.now() };
  const signer = new CachedBootstrapSigner(counting, () => clock.nowMs);
  const first = await signer.sign(INFO);
  assert.deepEqual(await signer.sign({ ...INFO }), first);
  assert.equal(signatures, 1);
  const moved = await signer.sign({ ...INFO, leader_id: 3 });
  assert.equal(signatures, 2);
  await verifyBootstrapSignature(moved, { secret: SECRET, peer: PEER, nowMs: clock.nowMs });
  clock.nowMs += BOOTSTRAP_SIGNATURE_REFRESH_MS;
  const refreshed = await signer.sign({ ...INFO, leader_id: 3 });
  assert.equal(signatures, 3, "signed afresh once the cached one is old");
  assert.equal(refreshed.issued_at_ms, clock.nowMs);
});
