import assert from "node:assert/strict";
import {
  formatSocketAddress,
  isDialableAddress,
  isUnspecifiedAddress,
  parseSocketAddress,
  sourceOfAddress,
} from "./socket_address.ts";

Deno.test("parseSocketAddress() accepts IPv4 and bracketed IPv6 with a port", () => {
  assert.deepStrictEqual(parseSocketAddress("127.0.0.1:7001"), {
    host: "127.0.0.1",
    port: 7001,
    family: 4,
  });
  assert.deepStrictEqual(parseSocketAddress("[::1]:0"), { host: "::1", port: 0, family: 6 });
  assert.deepStrictEqual(parseSocketAddress("[2001:DB8:0:0::1]:65535"), {
    host: "2001:db8::1",
    port: 65535,
    family: 6,
  });
});

Deno.test("parseSocketAddress() refuses host names, bad octets, bad ports and zones", () => {
  const refused = [
    "",
    "localhost:7001",
    "127.0.0.1",
    "127.0.0.1:",
    "127.0.0.1:65536",
    "127.0.0.1:07001",
    "256.0.0.1:1",
    "1.2.3:1",
    "01.2.3.4:1",
    "::1:7001",
    "[::1]",
    "[::1]:x",
    "[fe80::1%eth0]:1",
    "[1:2:3:4:5:6:7:8:9]:1",
    "[127.0.0.1]:1",
  ];
  for (const text of refused) assert.equal(parseSocketAddress(text), null, text);
});

Deno.test("formatSocketAddress() inverts parseSocketAddress() on canonical text", () => {
  for (const text of ["10.0.0.1:80", "[::1]:7001", "[2001:db8::1]:1"]) {
    const parsed = parseSocketAddress(text);
    assert.ok(parsed !== null);
    assert.equal(formatSocketAddress(parsed), text);
  }
});

Deno.test("isDialableAddress() is false for unspecified hosts and port 0", () => {
  const dialable = (text: string) => isDialableAddress(parseSocketAddress(text)!);
  assert.equal(dialable("127.0.0.1:7001"), true);
  assert.equal(dialable("0.0.0.0:7001"), false);
  assert.equal(dialable("[::]:7001"), false);
  assert.equal(dialable("127.0.0.1:0"), false);
  assert.equal(isUnspecifiedAddress(parseSocketAddress("[0:0::0]:1")!), true);
});

Deno.test("sourceOfAddress() counts IPv4 hosts by address and IPv6 hosts by /64", () => {
  assert.equal(sourceOfAddress("127.0.0.2:4000"), "127.0.0.2");
  assert.equal(sourceOfAddress("127.0.0.2"), "127.0.0.2");
  assert.equal(sourceOfAddress("[::ffff:10.1.2.3]:80"), "10.1.2.3");
  assert.equal(sourceOfAddress("[2001:db8:0:1::5]:7001"), "2001:db8:0:1::/64");
  assert.equal(sourceOfAddress("2001:DB8:0:1:ffff::9"), "2001:db8:0:1::/64");
  assert.equal(sourceOfAddress("[::1]:7001"), "0:0:0:0::/64");
});
