import assert from "node:assert/strict";
import { ClusterSecret } from "../auth/cluster_secret.ts";
import { SecretKey } from "../transport/iroh.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import { type BootstrapInfo, parseBootstrapInfo } from "./bootstrap_info.ts";
import {
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

Deno.test("canonicalBootstrapText() is the label and the fields as JSON in a fixed order, absent ones null", () => {
  assert.equal(
    canonicalBootstrapText(INFO),
    "blixard-bootstrap-v1\n" +
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
  const once = await signBootstrapInfo(INFO, OTHER_SECRET);
  const twice = await signBootstrapInfo(once, SECRET);
  assert.deepStrictEqual(twice, await signBootstrapInfo(INFO, SECRET));
});

Deno.test("CachedBootstrapSigner signs again only when the answer changed", async () => {
  let signatures = 0;
  const counting = {
    sign: (bytes: Uint8Array) => {
      signatures++;
      return SECRET.sign(bytes);
    },
  } as unknown as ClusterSecret;
  const signer = new CachedBootstrapSigner(counting);
  const first = await signer.sign(INFO);
  assert.deepEqual(await signer.sign({ ...INFO }), first);
  assert.equal(signatures, 1);
  const moved = await signer.sign({ ...INFO, leader_id: 3 });
  assert.equal(signatures, 2);
  await verifyBootstrapSignature(moved, { secret: SECRET, peer: PEER });
});
