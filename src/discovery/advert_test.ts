import assert from "node:assert/strict";
import fc from "fast-check";
import { SecretKey } from "../transport/iroh.ts";
import {
  addressesThatFit,
  type Advert,
  decodeAdvert,
  encodeAdvert,
  TXT_RECORD_BYTES_MAX,
  TXT_STRING_BYTES_MAX,
  TXT_STRINGS_MAX,
} from "./advert.ts";

const P2P_NODE_ID = SecretKey.generate().public().toString();
const encoder = new TextEncoder();

const ADVERT: Advert = {
  nodeId: 3,
  clusterId: "9f361990-c52d-47eb-a652-77f174702ea4",
  p2pNodeId: P2P_NODE_ID,
  addresses: ["192.0.2.7:7003", "[2001:db8::7]:7003"],
  httpPort: 8003,
  issuedAtMs: null,
  signature: null,
};

function bytesOf(strings: string[]): Uint8Array[] {
  return strings.map((string) => encoder.encode(string));
}

function decodeStrings(strings: string[]) {
  return decodeAdvert(bytesOf(strings));
}

Deno.test("encodeAdvert() writes the v=1 schema in order, and decodeAdvert() reads it back", () => {
  assert.deepEqual(encodeAdvert(ADVERT), [
    "v=1",
    "cluster=9f361990-c52d-47eb-a652-77f174702ea4",
    "node=3",
    `p2p=${P2P_NODE_ID}`,
    "addrs=192.0.2.7:7003,[2001:db8::7]:7003",
    "http=8003",
  ]);
  assert.deepEqual(decodeStrings(encodeAdvert(ADVERT)), { advert: ADVERT });
  const signed = {
    ...ADVERT,
    clusterId: null,
    issuedAtMs: 1_765_000_000_000,
    signature: "ab".repeat(32),
  };
  assert.deepEqual(encodeAdvert(signed).slice(-2), ["t=1765000000000", `sig=${"ab".repeat(32)}`]);
  assert.deepEqual(decodeStrings(encodeAdvert(signed)), { advert: signed });
});

Deno.test("decodeAdvert() reads back every advert encodeAdvert() writes", () => {
  const advert = fc.record({
    nodeId: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    clusterId: fc.option(fc.stringMatching(/^[A-Za-z0-9-]{1,128}$/), { nil: null }),
    addresses: fc.array(
      fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65_535 })).map(([ip, port]) => `${ip}:${port}`),
      { minLength: 1, maxLength: 8 },
    ),
    httpPort: fc.integer({ min: 1, max: 65_535 }),
  });
  fc.assert(fc.property(advert, (fields) => {
    const full: Advert = { ...fields, p2pNodeId: P2P_NODE_ID, issuedAtMs: null, signature: null };
    const decoded = decodeStrings(encodeAdvert(full));
    assert.ok("advert" in decoded, JSON.stringify(decoded));
    assert.deepEqual(decoded.advert, { ...full, addresses: addressesThatFit(full.addresses) });
  }));
});

Deno.test("addressesThatFit() keeps the addrs= string within one 255-byte TXT string", () => {
  const many = Array.from({ length: 16 }, (_, index) => `[2001:db8::${index + 1000}]:65000`);
  const kept = addressesThatFit(many);
  assert.ok(kept.length > 0 && kept.length < many.length);
  assert.ok(`addrs=${kept.join(",")}`.length <= TXT_STRING_BYTES_MAX);
  assert.deepEqual(kept, many.slice(0, kept.length));
});

Deno.test("decodeAdvert() refuses oversized records before reading them", () => {
  const tooMany = Array.from({ length: TXT_STRINGS_MAX + 1 }, (_, index) => `k${index}=v`);
  assert.equal((decodeStrings(tooMany) as { rejected: string }).rejected, "oversized");
  const tooLong = [...encodeAdvert(ADVERT), `x=${"y".repeat(TXT_RECORD_BYTES_MAX)}`];
  assert.equal((decodeStrings(tooLong) as { rejected: string }).rejected, "oversized");
});

Deno.test("decodeAdvert() refuses malformed records and says which rule broke", () => {
  const base = encodeAdvert(ADVERT);
  const replace = (key: string, value: string | null) =>
    base.flatMap((string) =>
      string.startsWith(`${key}=`) ? (value === null ? [] : [`${key}=${value}`]) : [string]
    );
  const cases: [string[], RegExp][] = [
    [replace("v", "2"), /v is not 1/],
    [replace("node", null), /missing or invalid/],
    [replace("node", "0"), /missing or invalid/],
    [replace("node", "1e3"), /missing or invalid/],
    [replace("p2p", "ab".repeat(32).toUpperCase()), /missing or invalid/],
    [replace("p2p", "zz"), /missing or invalid/],
    [replace("addrs", "0.0.0.0:7001"), /missing or invalid/],
    [replace("addrs", "host.example:7001"), /missing or invalid/],
    [replace("addrs", ""), /missing or invalid/],
    [replace("http", "70000"), /missing or invalid/],
    [replace("cluster", null), /missing or invalid/],
    [replace("cluster", "c".repeat(129)), /missing or invalid/],
    [[...base, "t=1"], /missing or invalid/],
    [[...base, "t=1", "sig=abc"], /missing or invalid/],
    [[...base, "NODE=4"], /key "node" repeated/],
  ];
  for (const [strings, detail] of cases) {
    const decoded = decodeStrings(strings);
    assert.ok("rejected" in decoded, JSON.stringify(strings));
    assert.equal(decoded.rejected, "malformed");
    assert.match(decoded.detail, detail);
  }
  const notUtf8 = [...bytesOf(base), new Uint8Array([0x78, 0x3d, 0xff])];
  assert.deepEqual(decodeAdvert(notUtf8), {
    rejected: "malformed",
    detail: "a TXT string is not UTF-8",
  });
});

Deno.test("decodeAdvert() ignores keys it does not know, so later versions may add some", () => {
  assert.deepEqual(decodeStrings([...encodeAdvert(ADVERT), "role=leader", "flag"]), {
    advert: ADVERT,
  });
});

Deno.test("decodeAdvert() never throws on arbitrary bytes", () => {
  fc.assert(fc.property(
    fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
    (strings) => {
      const decoded = decodeAdvert(strings);
      assert.ok("advert" in decoded || "rejected" in decoded);
    },
  ));
});
