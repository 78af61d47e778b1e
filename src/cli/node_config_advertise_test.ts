import assert from "node:assert/strict";
import { UsageError } from "../util/errors.ts";
import { ADVERTISE_ADDRESSES_MAX, parseNodeConfig } from "./node_config.ts";

type Environment = Record<string, string | undefined>;

function assertUsageError(args: string[], environment: Environment, message: string): void {
  assert.throws(() => parseNodeConfig(args, environment), (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("--advertise is repeatable, takes commas, and keeps each address once in canonical form", () => {
  const config = parseNodeConfig([
    "--id",
    "1",
    "--advertise",
    "203.0.113.7:7001",
    "--advertise",
    "[2001:DB8::1]:7001, 203.0.113.7:7001",
  ], {});
  assert.deepEqual(config.advertiseAddresses, ["203.0.113.7:7001", "[2001:db8::1]:7001"]);
});

Deno.test("BLIXARD_ADVERTISE is comma-separated, and --advertise wins over it", () => {
  const environment = { BLIXARD_ADVERTISE: "198.51.100.1:7001,198.51.100.2:7001" };
  assert.deepEqual(parseNodeConfig(["--id", "1"], environment).advertiseAddresses, [
    "198.51.100.1:7001",
    "198.51.100.2:7001",
  ]);
  const flagWins = parseNodeConfig(["--id", "1", "--advertise", "192.0.2.9:1"], environment);
  assert.deepEqual(flagWins.advertiseAddresses, ["192.0.2.9:1"]);
});

const MANY = Array.from({ length: ADVERTISE_ADDRESSES_MAX + 1 }, (_, index) => `10.0.0.${index}:1`)
  .join(",");

const REFUSED: [string[], Environment, string][] = [
  [
    ["--advertise", "node1.example:7001"],
    {},
    "--advertise node1.example:7001: address node1.example:7001: the host must be an IP " +
    "address; names are not resolved",
  ],
  [
    ["--advertise", "0.0.0.0:7001"],
    {},
    "--advertise 0.0.0.0:7001: address 0.0.0.0:7001: names no host; advertise an address " +
    "peers can dial",
  ],
  [
    [],
    { BLIXARD_ADVERTISE: "10.0.0.1:0" },
    "BLIXARD_ADVERTISE=10.0.0.1:0: address 10.0.0.1:0: port must be 1–65535",
  ],
  [
    ["--advertise", MANY],
    {},
    `--advertise ${MANY.slice(0, 100)}…: at most ${ADVERTISE_ADDRESSES_MAX} addresses`,
  ],
  [
    ["--http-bind", "localhost:9100"],
    {},
    "--http-bind localhost:9100: the host must be an IP address, e.g. 127.0.0.1:7001, " +
    "0.0.0.0:7001 or [::1]:7001",
  ],
  [
    ["--http-bind", "127.0.0.1"],
    {},
    "--http-bind 127.0.0.1: must be host:port, e.g. 127.0.0.1:7001 or [::1]:7001",
  ],
  [
    ["--http-bind", "127.0.0.1:1", "--http-bind", "127.0.0.1:2"],
    {},
    "--http-bind: given more than once; give it once",
  ],
];

Deno.test("--advertise and --http-bind refuse names, unusable addresses and too many values in one line", () => {
  for (const [args, environment, message] of REFUSED) {
    assertUsageError(["--id", "1", ...args], environment, message);
  }
});

Deno.test("without --http-bind the HTTP server is on the bind host at port + 1000", () => {
  const config = parseNodeConfig(["--id", "1", "--bind", "[::1]:7005"], {});
  assert.equal(config.httpHost, "::1");
  assert.equal(config.httpPort, 8005);
});

Deno.test("--http-bind places the HTTP server anywhere, up to port 65535", () => {
  const config = parseNodeConfig(
    ["--id", "1", "--bind", "0.0.0.0:7001", "--http-bind", "127.0.0.1:65535"],
    {},
  );
  assert.deepEqual([config.bindHost, config.bindPort], ["0.0.0.0", 7001]);
  assert.deepEqual([config.httpHost, config.httpPort], ["127.0.0.1", 65535]);
  const fromVariable = parseNodeConfig(["--id", "1"], { BLIXARD_HTTP_BIND: "[::1]:9100" });
  assert.deepEqual([fromVariable.httpHost, fromVariable.httpPort], ["::1", 9100]);
});
