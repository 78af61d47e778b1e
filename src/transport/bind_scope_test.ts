import assert from "node:assert/strict";
import {
  companionBindAddress,
  defaultAdvertisedAddresses,
  type InterfaceAddress,
  isInBindScope,
} from "./bind_scope.ts";
import { formatSocketAddress, parseIpAddress, parseSocketAddress } from "./socket_address.ts";

function socket(text: string) {
  const address = parseSocketAddress(text);
  assert.ok(address !== null, text);
  return address;
}

const INTERFACES: InterfaceAddress[] = [
  { family: "IPv4", address: "127.0.0.1" },
  { family: "IPv6", address: "::1" },
  { family: "IPv4", address: "192.0.2.2" },
  { family: "IPv6", address: "FD00::2" },
  { family: "IPv6", address: "fe80::fc:ff:fe00:1" },
  { family: "IPv4", address: "10.0.0.5" },
];

Deno.test("companionBindAddress() gives the other IP family only its loopback, except for [::]", () => {
  const companion = (bind: string) => formatSocketAddress(companionBindAddress(socket(bind)));
  assert.equal(companion("127.0.0.1:7001"), "[::1]:0");
  assert.equal(companion("10.1.2.3:7001"), "[::1]:0");
  assert.equal(companion("0.0.0.0:7001"), "[::1]:0");
  assert.equal(companion("[::1]:7001"), "127.0.0.1:0");
  assert.equal(companion("[2001:db8::1]:7001"), "127.0.0.1:0");
  assert.equal(companion("[::]:7001"), "0.0.0.0:7001");
});

Deno.test("isInBindScope() admits the bind address, its family for 0.0.0.0, anything for [::], and the other family's loopback", () => {
  const inScope = (bind: string, local: string | null) =>
    isInBindScope(socket(bind), local === null ? null : parseIpAddress(local));
  assert.equal(inScope("10.1.2.3:7001", "10.1.2.3"), true);
  assert.equal(inScope("10.1.2.3:7001", "192.0.2.2"), false);
  assert.equal(inScope("10.1.2.3:7001", "::1"), true, "the companion socket's address");
  assert.equal(inScope("10.1.2.3:7001", "fd00::2"), false);
  assert.equal(inScope("127.0.0.1:7001", "127.0.0.2"), false);
  assert.equal(inScope("[::1]:7001", "::1"), true);
  assert.equal(inScope("[::1]:7001", "127.0.0.1"), true, "the companion socket's address");
  assert.equal(inScope("[::1]:7001", "192.0.2.2"), false);
  assert.equal(inScope("0.0.0.0:7001", "192.0.2.2"), true);
  assert.equal(inScope("0.0.0.0:7001", "fd00::2"), false);
  assert.equal(inScope("[::]:7001", "fd00::2"), true);
  assert.equal(inScope("[::]:7001", "192.0.2.2"), true);
  assert.equal(inScope("[::]:7001", null), false, "an unknown local address is not in scope");
});

Deno.test("defaultAdvertisedAddresses() is the bound address, or the interfaces a wildcard covers", () => {
  assert.deepEqual(defaultAdvertisedAddresses([socket("10.0.0.5:7001")], INTERFACES), [
    "10.0.0.5:7001",
  ]);
  assert.deepEqual(defaultAdvertisedAddresses([socket("0.0.0.0:7001")], INTERFACES), [
    "10.0.0.5:7001",
    "192.0.2.2:7001",
  ]);
  assert.deepEqual(
    defaultAdvertisedAddresses([socket("[::]:7001"), socket("0.0.0.0:7002")], INTERFACES),
    ["10.0.0.5:7002", "192.0.2.2:7002", "[fd00::2]:7001"],
  );
});

Deno.test("defaultAdvertisedAddresses() falls back to loopback only on a machine without other addresses", () => {
  const loopbackOnly = INTERFACES.filter((entry) => /^(127\.|::1$)/.test(entry.address));
  assert.deepEqual(defaultAdvertisedAddresses([socket("0.0.0.0:7001")], loopbackOnly), [
    "127.0.0.1:7001",
  ]);
  assert.deepEqual(defaultAdvertisedAddresses([socket("[::]:7001")], loopbackOnly), [
    "[::1]:7001",
  ]);
});
