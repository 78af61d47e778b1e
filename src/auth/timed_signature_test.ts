import assert from "node:assert/strict";
import { ClusterSecret } from "./cluster_secret.ts";
import {
  CLOCK_SKEW_MS,
  signTimed,
  timedSignatureMessage,
  VALIDITY_MS_MAX,
  verifyTimed,
} from "./timed_signature.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("the cluster secret of the test"));
const OTHER_SECRET = await ClusterSecret.fromBytes(
  encoder.encode("another secret, also 30 bytes!"),
);
const FIELDS = {
  label: "blixard-test-v1",
  payload: '{"a":1}',
  issuedAtMs: 1_000_000,
  validForMs: 60_000,
};

Deno.test("timedSignatureMessage() is the label, the issue time, the validity and the payload, one per line", () => {
  assert.equal(
    new TextDecoder().decode(timedSignatureMessage(FIELDS)),
    'blixard-test-v1\n1000000\n60000\n{"a":1}',
  );
  assert.throws(() => timedSignatureMessage({ ...FIELDS, label: "two\nlines" }));
});

Deno.test("verifyTimed() accepts a signature within its window and says why it refuses the others", async () => {
  const signature = await signTimed(SECRET, FIELDS);
  const at = (nowMs: number) => verifyTimed(SECRET, { ...FIELDS, signature, nowMs });
  assert.equal(await at(FIELDS.issuedAtMs), null);
  assert.equal(await at(FIELDS.issuedAtMs + FIELDS.validForMs + CLOCK_SKEW_MS), null);
  assert.equal(await at(FIELDS.issuedAtMs + FIELDS.validForMs + CLOCK_SKEW_MS + 1), "expired");
  assert.equal(await at(FIELDS.issuedAtMs - CLOCK_SKEW_MS - 1), "not_yet_valid");
  const nowMs = FIELDS.issuedAtMs;
  for (
    const changed of [
      { label: "blixard-other-v1" },
      { payload: '{"a":2}' },
      { issuedAtMs: FIELDS.issuedAtMs + 1 },
      { validForMs: FIELDS.validForMs + 1 },
    ]
  ) {
    assert.equal(
      await verifyTimed(SECRET, { ...FIELDS, ...changed, signature, nowMs }),
      "bad_signature",
      JSON.stringify(changed),
    );
  }
  assert.equal(
    await verifyTimed(OTHER_SECRET, { ...FIELDS, signature, nowMs }),
    "bad_signature",
  );
  assert.equal(await verifyTimed(SECRET, { ...FIELDS, signature: "zz", nowMs }), "bad_signature");
});

Deno.test("signTimed() refuses a validity beyond VALIDITY_MS_MAX, and verifyTimed() refuses one signed anyway", async () => {
  await assert.rejects(signTimed(SECRET, { ...FIELDS, validForMs: VALIDITY_MS_MAX + 1 }));
  const tooLong = { ...FIELDS, validForMs: VALIDITY_MS_MAX + 1 };
  const signature = (await SECRET.sign(timedSignatureMessage(tooLong))).toHex();
  assert.equal(
    await verifyTimed(SECRET, { ...tooLong, signature, nowMs: FIELDS.issuedAtMs }),
    "validity_too_long",
  );
});
