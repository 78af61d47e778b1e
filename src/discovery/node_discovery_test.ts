import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { StartupError } from "../util/errors.ts";
import { parseNodeConfig } from "../cli/node_config.ts";
import { mdnsInterfaceAddress } from "./node_discovery.ts";

function interfaceOf(args: string[]): string | null {
  return mdnsInterfaceAddress(parseNodeConfig(["--id", "1", "--mdns", ...args], {}));
}

Deno.test("mdnsInterfaceAddress() is the --bind host by default, every interface for 0.0.0.0", () => {
  assert.equal(interfaceOf(["--bind", "127.0.0.1:7001"]), "127.0.0.1");
  assert.equal(interfaceOf(["--bind", "192.0.2.10:7001"]), "192.0.2.10");
  assert.equal(interfaceOf(["--bind", "0.0.0.0:7001"]), null);
});

Deno.test("mdnsInterfaceAddress() takes --mdns-interface as an IPv4 address or an interface name", () => {
  assert.equal(interfaceOf(["--mdns-interface", "192.0.2.20"]), "192.0.2.20");
  const [name, addresses] = Object.entries(networkInterfaces())
    .find(([, addresses]) => (addresses ?? []).some((address) => address.family === "IPv4")) ??
    [];
  if (name !== undefined) {
    const ipv4 = addresses!.find((address) => address.family === "IPv4")!.address;
    assert.equal(interfaceOf(["--mdns-interface", name]), ipv4);
  }
});

Deno.test("mdnsInterfaceAddress() refuses an unknown interface and an IPv6 --bind, naming what to give", () => {
  assert.throws(
    () => interfaceOf(["--mdns-interface", "no-such-if0"]),
    (error: unknown) =>
      error instanceof StartupError &&
      /^--mdns-interface no-such-if0: no such interface with an IPv4 address on this host; give one of /
        .test(error.message),
  );
  assert.throws(
    () => interfaceOf(["--bind", "[::1]:7001"]),
    (error: unknown) =>
      error instanceof StartupError &&
      error.message ===
        "--bind ::1: mDNS runs over IPv4 in this version; give --mdns-interface with an IPv4 interface",
  );
});
