import assert from "node:assert/strict";
import { UsageError } from "../util/errors.ts";
import { parseNodeConfig } from "./node_config.ts";

function usageErrorOf(args: string[], environment: Record<string, string> = {}): string {
  try {
    parseNodeConfig(args, environment);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${String(error)}`);
    return error.message;
  }
  throw new Error(`no usage error for ${args.join(" ")}`);
}

Deno.test("parseNodeConfig() reads --bootstrap-expect and the other mDNS settings", () => {
  const config = parseNodeConfig(
    ["--id", "2", "--mdns", "--bootstrap-expect", "3", "--discovery-wait", "0ms"],
    {},
  );
  assert.deepEqual(config.discovery, {
    interface: null,
    bootstrapExpect: 3,
    discoveryWaitMs: 0,
    clusterId: null,
  });
  const fromEnvironment = parseNodeConfig(["--id", "2"], {
    BLIXARD_ENABLE_MDNS_DISCOVERY: "true",
    BLIXARD_BOOTSTRAP_EXPECT: "5",
  });
  assert.equal(fromEnvironment.discovery.bootstrapExpect, 5);
});

Deno.test("parseNodeConfig() refuses mDNS settings without --mdns, and with --peers for --bootstrap-expect", () => {
  assert.equal(
    usageErrorOf(["--id", "1", "--bootstrap-expect", "3"]),
    "--bootstrap-expect 3: applies to mDNS discovery only; add --mdns (or BLIXARD_MDNS=true)",
  );
  assert.equal(
    usageErrorOf(["--id", "1", "--mdns-interface", "eth0"]),
    "--mdns-interface eth0: applies to mDNS discovery only; add --mdns (or BLIXARD_MDNS=true)",
  );
  assert.equal(
    usageErrorOf(["--id", "1", "--mdns", "--bootstrap-expect", "3", "--peers", "127.0.0.1:7001"]),
    "--bootstrap-expect 3: forms a new cluster from mDNS candidates; give it or --peers, not both",
  );
});

Deno.test("parseNodeConfig() names the bad value of each mDNS setting", () => {
  assert.equal(
    usageErrorOf(["--id", "1", "--mdns", "--bootstrap-expect", "0"]),
    "--bootstrap-expect 0: must be an integer from 1 to 64",
  );
  assert.equal(
    usageErrorOf(["--id", "1", "--mdns", "--bootstrap-expect", "65"]),
    "--bootstrap-expect 65: must be an integer from 1 to 64",
  );
  assert.equal(
    usageErrorOf(["--id", "1", "--mdns", "--discovery-wait", "1"]),
    "--discovery-wait 1: must be a whole number with a unit, at most 10m (e.g. 0ms, 500ms, 2s)",
  );
  assert.equal(
    usageErrorOf(["--id", "1", "--cluster-id", "a b"]),
    "--cluster-id \"a b\": must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );
  assert.equal(
    usageErrorOf(["--id", "1", "--mdns", "--mdns-interface", "eth0;rm"]),
    "--mdns-interface eth0;rm: must be an interface name (e.g. eth0) or its IPv4 address",
  );
});
