import assert from "node:assert/strict";
import { ClusterSecret } from "../auth/cluster_secret.ts";
import { canonicalBootstrapText } from "../bootstrap/bootstrap_signature.ts";
import { SecretKey } from "../transport/iroh.ts";
import type { Advert } from "./advert.ts";
import {
  ADVERT_CLOCK_SKEW_MAX_MS,
  ADVERT_SIGNATURE_AGE_MAX_MS,
  ADVERT_SIGNATURE_LABEL,
  canonicalAdvertText,
  checkAdvertSignature,
  signAdvert,
} from "./advert_signature.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("advert signature secret 1"));
const OTHER_SECRET = await ClusterSecret.fromBytes(encoder.encode("advert signature secret 2"));
const NOW_MS = 1_765_000_000_000;

const ADVERT: Advert = {
  nodeId: 2,
  clusterId: "c1",
  p2pNodeId: SecretKey.generate().public().toString(),
  addresses: ["192.0.2.2:7002"],
  httpPort: 8002,
  issuedAtMs: null,
  signature: null,
};

Deno.test("signAdvert() signs every field with t, and checkAdvertSignature() accepts it", async () => {
  const signed = await signAdvert(ADVERT, { secret: SECRET, nowMs: NOW_MS });
  assert.equal(signed.issuedAtMs, NOW_MS);
  assert.match(signed.signature ?? "", /^[0-9a-f]{64}$/);
  assert.equal(await checkAdvertSignature(signed, { secret: SECRET, nowMs: NOW_MS + 1000 }), null);
});

Deno.test("checkAdvertSignature() refuses unsigned, other-secret and altered adverts", async () => {
  const signed = await signAdvert(ADVERT, { secret: SECRET, nowMs: NOW_MS });
  const check = (advert: Advert) => checkAdvertSignature(advert, { secret: SECRET, nowMs: NOW_MS });
  assert.equal(await check(ADVERT), "unsigned");
  assert.equal(
    await check(await signAdvert(ADVERT, { secret: OTHER_SECRET, nowMs: NOW_MS })),
    "bad_signature",
  );
  const forgedKey = { ...signed, p2pNodeId: SecretKey.generate().public().toString() };
  for (
    const altered of [
      forgedKey,
      { ...signed, nodeId: 3 },
      { ...signed, clusterId: null },
      { ...signed, addresses: ["192.0.2.9:7002"] },
      { ...signed, httpPort: 8003 },
      { ...signed, issuedAtMs: NOW_MS + 1 },
    ]
  ) {
    assert.equal(await check(altered), "bad_signature", JSON.stringify(altered));
  }
});

Deno.test("checkAdvertSignature() refuses a signature older than the window or from the future", async () => {
  const signed = await signAdvert(ADVERT, { secret: SECRET, nowMs: NOW_MS });
  const at = (nowMs: number) => checkAdvertSignature(signed, { secret: SECRET, nowMs });
  assert.equal(await at(NOW_MS + ADVERT_SIGNATURE_AGE_MAX_MS), null);
  assert.equal(await at(NOW_MS + ADVERT_SIGNATURE_AGE_MAX_MS + 1), "stale");
  assert.equal(await at(NOW_MS - ADVERT_CLOCK_SKEW_MAX_MS), null);
  assert.equal(await at(NOW_MS - ADVERT_CLOCK_SKEW_MAX_MS - 1), "stale");
});

Deno.test("the advert signature has its own label, apart from /bootstrap's", () => {
  const text = canonicalAdvertText({ ...ADVERT, issuedAtMs: NOW_MS });
  assert.ok(text.startsWith(ADVERT_SIGNATURE_LABEL));
  const bootstrapText = canonicalBootstrapText({
    node_id: ADVERT.nodeId,
    p2p_node_id: ADVERT.p2pNodeId,
    p2p_addresses: [...ADVERT.addresses],
    p2p_relay_url: null,
    cluster_id: ADVERT.clusterId,
    leader_id: null,
  });
  assert.notEqual(text.split("\n")[0], bootstrapText.split("\n")[0]);
});
