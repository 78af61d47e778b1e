import assert from "node:assert/strict";
import { ClusterSecret } from "../auth/cluster_secret.ts";
import { SecretKey } from "../transport/iroh.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import {
  DNS_IDENTITY_SIGNATURE_LABEL,
  formatDnsIdentity,
  ISSUE_TIME_SKEW_SECONDS_MAX,
  parseDnsIdentity,
  quotedTxtStrings,
  verifyDnsIdentity,
} from "./dns_identity.ts";
import { parsePeerEntry, resolvePeerEntry, type TxtResolver } from "./peer_source.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("the cluster secret of the test"));
const OTHER_SECRET = await ClusterSecret.fromBytes(
  encoder.encode("another secret, also 30 bytes!"),
);
const KEY = SecretKey.generate().public().toString();
const PEER = "record (dns:seeds.example)";
const NOW_SECONDS = 1_800_000_000;
const MEMBER = {
  cluster_id: "2f1c5f0e-8a52-4a9e-9b0c-3d6b2a1e7c44",
  node_id: 3,
  p2p_node_id: KEY,
  p2p_addresses: ["127.0.0.1:7003", "[::1]:7003"],
  p2p_relay_url: null,
};

function isRefusal(reason: string, field: string): (error: unknown) => boolean {
  return (error) =>
    error instanceof BootstrapError && error.reason === reason && error.field === field &&
    error.message.startsWith(`peer ${PEER}: DNS identity record`) && !error.message.includes("\n");
}

Deno.test("formatDnsIdentity() writes an unsigned record that parseDnsIdentity() reads back", async () => {
  const text = await formatDnsIdentity(MEMBER, { secret: null, nowSeconds: NOW_SECONDS });
  assert.equal(
    text,
    `blixard1 cluster=${MEMBER.cluster_id} node=3 p2p=${KEY} addrs=127.0.0.1:7003,[::1]:7003`,
  );
  const identity = parseDnsIdentity(text, PEER);
  assert.equal(identity.signed, null);
  assert.deepEqual(identity.info, {
    node_id: 3,
    p2p_node_id: KEY,
    p2p_addresses: ["127.0.0.1:7003", "[::1]:7003"],
    p2p_relay_url: null,
    cluster_id: MEMBER.cluster_id,
  });
});

Deno.test("a signed record carries its issue time and verifies with the secret only", async () => {
  const member = { ...MEMBER, p2p_relay_url: "https://relay.example/" };
  const text = await formatDnsIdentity(member, { secret: SECRET, nowSeconds: NOW_SECONDS });
  assert.match(
    text,
    new RegExp(` relay=https://relay.example/ t=${NOW_SECONDS} sig=[0-9a-f]{64}$`),
  );
  const identity = parseDnsIdentity(text, PEER);
  assert.equal(identity.signed?.issuedAtSeconds, NOW_SECONDS);
  assert.equal(identity.info.p2p_relay_url, "https://relay.example/");
  // The MAC covers the label and the text before " sig=".
  const mac = await SECRET.sign(
    encoder.encode(DNS_IDENTITY_SIGNATURE_LABEL + identity.signed!.signedText),
  );
  assert.equal(mac.toHex(), identity.signed!.signature);
  await verifyDnsIdentity(identity, { secret: SECRET, peer: PEER, nowSeconds: NOW_SECONDS });
  await assert.rejects(
    verifyDnsIdentity(identity, { secret: OTHER_SECRET, peer: PEER, nowSeconds: NOW_SECONDS }),
    isRefusal("bad_signature", "sig"),
  );
});

Deno.test("verifyDnsIdentity() refuses an unsigned, altered or future record", async () => {
  const unsigned = parseDnsIdentity(
    await formatDnsIdentity(MEMBER, { secret: null, nowSeconds: NOW_SECONDS }),
    PEER,
  );
  const options = { secret: SECRET, peer: PEER, nowSeconds: NOW_SECONDS };
  await assert.rejects(verifyDnsIdentity(unsigned, options), isRefusal("bad_signature", "sig"));
  const signed = await formatDnsIdentity(MEMBER, { secret: SECRET, nowSeconds: NOW_SECONDS });
  const altered = parseDnsIdentity(signed.replace("127.0.0.1:7003", "127.0.0.9:7003"), PEER);
  await assert.rejects(verifyDnsIdentity(altered, options), isRefusal("bad_signature", "sig"));
  const future = parseDnsIdentity(
    await formatDnsIdentity(MEMBER, {
      secret: SECRET,
      nowSeconds: NOW_SECONDS + ISSUE_TIME_SKEW_SECONDS_MAX + 60,
    }),
    PEER,
  );
  await assert.rejects(verifyDnsIdentity(future, options), /issued in the future/);
});

Deno.test("parseDnsIdentity() refuses hostile records with the field at fault", () => {
  const base = `blixard1 cluster=c node=3 p2p=${KEY}`;
  const cases: [string, string][] = [
    [`${base} addrs=`, "addrs"],
    [`${base} addrs=0.0.0.0:7003`, "addrs"],
    [`${base} addrs=${Array(17).fill("10.0.0.1:1").join(",")}`, "addrs"],
    [`blixard1 cluster=c node=0 p2p=${KEY} addrs=10.0.0.1:1`, "node"],
    [`blixard1 cluster=c node=3 p2p=abc addrs=10.0.0.1:1`, "p2p"],
    [`blixard1 node=3 p2p=${KEY} addrs=10.0.0.1:1`, "cluster"],
    [`${base} addrs=10.0.0.1:1 node=4`, "node"],
    [`${base} addrs=10.0.0.1:1 owner=me`, '"owner=me"'],
    [`${base} addrs=10.0.0.1:1 relay=ftp://x`, "relay"],
    [`${base} addrs=10.0.0.1:1 sig=${"a".repeat(64)}`, "t"],
    [`${base} addrs=10.0.0.1:1 t=1 sig=xyz`, "sig"],
    [`${base} sig=${"a".repeat(64)} t=1 addrs=10.0.0.1:1`, "sig"],
    [`${base} addrs=10.0.0.1:1 ${"x".repeat(3000)}`, "record"],
  ];
  for (const [text, field] of cases) {
    assert.throws(() => parseDnsIdentity(text, PEER), isRefusal("invalid_field", field), text);
  }
});

Deno.test("quotedTxtStrings() splits a long record into strings of at most 255 characters", () => {
  const text = "x".repeat(600);
  const quoted = quotedTxtStrings(text);
  const strings = [...quoted.matchAll(/"([^"]*)"/g)].map((match) => match[1]!);
  assert.deepEqual(strings.map((string) => string.length), [255, 255, 90]);
  assert.equal(strings.join(""), text);
});

Deno.test("resolvePeerEntry() turns identity records into sources to dial and skips broken ones", async () => {
  const record = await formatDnsIdentity(MEMBER, { secret: null, nowSeconds: NOW_SECONDS });
  const resolveTxt: TxtResolver = () =>
    Promise.resolve([
      [record.slice(0, 255), record.slice(255)],
      ["blixard1 node=oops"],
      ["127.0.0.1:7001"],
    ]);
  const sources = await resolvePeerEntry(parsePeerEntry("dns:seeds.example."), { resolveTxt });
  assert.equal(sources.length, 2);
  const [identity, http] = sources;
  assert.ok(identity !== undefined && "identity" in identity);
  assert.equal(identity.peer, "node 3 (dns:seeds.example.)");
  assert.equal(identity.identity.info.p2p_node_id, KEY);
  assert.deepEqual(http, {
    peer: "127.0.0.1:7001 (dns:seeds.example.)",
    url: "http://127.0.0.1:8001/bootstrap",
  });
});
