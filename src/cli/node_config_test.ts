import { parsePeerEntry } from "../bootstrap/peer_source.ts";
import assert from "node:assert/strict";
import { SecretText } from "../auth/cluster_secret.ts";
import { HelpRequested, UsageError } from "../util/errors.ts";
import {
  environmentVariableFor,
  NODE_FLAGS,
  parseHostPort,
  parseNodeConfig,
  PEERS_MAX,
} from "./node_config.ts";
import { NODE_USAGE } from "./usage.ts";
import type { NodeConfig } from "../config/node_config.ts";

type Environment = Record<string, string | undefined>;

function parse(args: string[], environment: Environment = {}): NodeConfig {
  return parseNodeConfig(args, environment);
}

/** Asserts that parsing fails with a `UsageError` whose message is exactly `message`. */
function assertUsageError(args: string[], environment: Environment, message: string): void {
  assert.throws(() => parse(args, environment), (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.exitCode, 2);
    return true;
  });
}

const PORT_RULE = "port must be 1–64535 so that the HTTP port (port+1000) is valid";

Deno.test("parseNodeConfig() fills every default from --id alone", () => {
  assert.deepEqual(parse(["--id", "1"]), {
    nodeId: 1,
    bindHost: "127.0.0.1",
    bindPort: 7001,
    httpPort: 8001,
    httpHost: "127.0.0.1",
    advertiseAddresses: [],
    dataDir: "./data1",
    peers: [],
    relayUrl: null,
    joinTimeoutMs: 30_000,
    logLevel: "info",
    logFormat: "text",
    mdnsEnabled: false,
    discovery: { interface: null, bootstrapExpect: null, discoveryWaitMs: 1_000, clusterId: null },
    clusterSecret: null,
    dnsServer: null,
    joinTicket: null,
    votersMax: 5,
    restoreFile: null,
    forceNewCluster: false,
  });
});

Deno.test("parseNodeConfig() reads every flag", () => {
  const config = parse([
    "--id=3",
    "--bind",
    "[::1]:9000",
    "--data-dir",
    "/var/lib/blixard",
    "--peers",
    "10.0.0.1:7001, http://seed.example:8001/bootstrap,dns:_blixard.example.com",
    "--relay-url",
    "https://relay.example",
    "--join-timeout",
    "2m",
    "--log-level",
    "debug",
    "--log-format",
    "json",
    "--mdns",
    "--cluster-secret-file",
    "/etc/blixard/secret",
    "--dns-server",
    "127.0.0.1:5353",
    "--mdns-interface",
    "eth0",
    "--discovery-wait",
    "2s",
    "--cluster-id",
    "prod-1",
    "--max-voters",
    "7",
  ]);
  assert.deepEqual(config, {
    nodeId: 3,
    bindHost: "::1",
    bindPort: 9000,
    httpPort: 10000,
    httpHost: "::1",
    advertiseAddresses: [],
    dataDir: "/var/lib/blixard",
    peers: ["10.0.0.1:7001", "http://seed.example:8001/bootstrap", "dns:_blixard.example.com"],
    relayUrl: "https://relay.example",
    joinTimeoutMs: 120_000,
    logLevel: "debug",
    logFormat: "json",
    mdnsEnabled: true,
    discovery: {
      interface: "eth0",
      bootstrapExpect: null,
      discoveryWaitMs: 2_000,
      clusterId: "prod-1",
    },
    clusterSecret: {
      kind: "file",
      path: "/etc/blixard/secret",
      origin: "--cluster-secret-file",
    },
    dnsServer: { ipAddr: "127.0.0.1", port: 5353 },
    joinTicket: null,
    votersMax: 7,
    restoreFile: null,
    forceNewCluster: false,
  });
});

Deno.test("parseNodeConfig() reads every flag from its BLIXARD_ variable", () => {
  const config = parse([], {
    BLIXARD_ID: "2",
    BLIXARD_BIND: "0.0.0.0:7100",
    BLIXARD_DATA_DIR: "/data",
    BLIXARD_PEERS: "a.example:7001",
    BLIXARD_RELAY_URL: "http://relay.local:3340",
    BLIXARD_JOIN_TIMEOUT: "500ms",
    BLIXARD_LOG_LEVEL: "warning",
    BLIXARD_LOG_FORMAT: "json",
    BLIXARD_MDNS: "yes",
    BLIXARD_CLUSTER_SECRET_FILE: "/secret",
    BLIXARD_DNS_SERVER: "::1",
    BLIXARD_MDNS_INTERFACE: "10.0.0.2",
    BLIXARD_DISCOVERY_WAIT: "0ms",
    BLIXARD_CLUSTER_ID: "c1",
    BLIXARD_MAX_VOTERS: "3",
  });
  assert.deepEqual(config, {
    nodeId: 2,
    bindHost: "0.0.0.0",
    bindPort: 7100,
    httpPort: 8100,
    httpHost: "0.0.0.0",
    advertiseAddresses: [],
    dataDir: "/data",
    peers: ["a.example:7001"],
    relayUrl: "http://relay.local:3340",
    joinTimeoutMs: 500,
    logLevel: "warning",
    logFormat: "json",
    mdnsEnabled: true,
    discovery: {
      interface: "10.0.0.2",
      bootstrapExpect: null,
      discoveryWaitMs: 0,
      clusterId: "c1",
    },
    clusterSecret: { kind: "file", path: "/secret", origin: "BLIXARD_CLUSTER_SECRET_FILE" },
    dnsServer: { ipAddr: "::1", port: 53 },
    joinTicket: null,
    votersMax: 3,
    restoreFile: null,
    forceNewCluster: false,
  });
});

Deno.test("environmentVariableFor() names each flag's variable in upper snake case", () => {
  assert.deepEqual(NODE_FLAGS.map(environmentVariableFor), [
    "BLIXARD_ID",
    "BLIXARD_BIND",
    "BLIXARD_DATA_DIR",
    "BLIXARD_PEERS",
    "BLIXARD_RELAY_URL",
    "BLIXARD_JOIN_TIMEOUT",
    "BLIXARD_LOG_LEVEL",
    "BLIXARD_LOG_FORMAT",
    "BLIXARD_MDNS",
    "BLIXARD_CLUSTER_SECRET_FILE",
    "BLIXARD_ADVERTISE",
    "BLIXARD_HTTP_BIND",
    "BLIXARD_DNS_SERVER",
    "BLIXARD_MDNS_INTERFACE",
    "BLIXARD_BOOTSTRAP_EXPECT",
    "BLIXARD_DISCOVERY_WAIT",
    "BLIXARD_CLUSTER_ID",
    "BLIXARD_MAX_VOTERS",
  ]);
});

Deno.test("parseNodeConfig() lets a flag win over its variable", () => {
  const config = parse(["--id", "4", "--log-level", "error", "--no-mdns"], {
    BLIXARD_ID: "9",
    BLIXARD_LOG_LEVEL: "trace",
    BLIXARD_MDNS: "true",
  });
  assert.equal(config.nodeId, 4);
  assert.equal(config.logLevel, "error");
  assert.equal(config.mdnsEnabled, false);
});

Deno.test("parseNodeConfig() reads the secret itself from BLIXARD_CLUSTER_SECRET and never shows it", () => {
  const secret = "a secret of more than sixteen bytes";
  const config = parse(["--id", "1"], { BLIXARD_CLUSTER_SECRET: secret });
  const source = config.clusterSecret;
  assert.ok(source?.kind === "value");
  assert.equal(source.origin, "BLIXARD_CLUSTER_SECRET");
  assert.equal(source.text.reveal(), secret);
  assert.ok(source.text instanceof SecretText);
  for (const shown of [JSON.stringify(config), String(source.text), Deno.inspect(config)]) {
    assert.ok(!shown.includes(secret), shown);
  }
});

Deno.test("parseNodeConfig() lets --cluster-secret-file win over both secret variables", () => {
  const config = parse(["--id", "1", "--cluster-secret-file", "/run/secret"], {
    BLIXARD_CLUSTER_SECRET_FILE: "/etc/secret",
    BLIXARD_CLUSTER_SECRET: "a secret of more than sixteen bytes",
  });
  assert.deepEqual(config.clusterSecret, {
    kind: "file",
    path: "/run/secret",
    origin: "--cluster-secret-file",
  });
});

Deno.test("parseNodeConfig() refuses both secret variables at once, without showing the secret", () => {
  const secret = "a secret of more than sixteen bytes";
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_CLUSTER_SECRET_FILE: "/etc/secret", BLIXARD_CLUSTER_SECRET: secret },
    "BLIXARD_CLUSTER_SECRET_FILE and BLIXARD_CLUSTER_SECRET are both set: set only one of them",
  );
});

Deno.test('parseNodeConfig() refuses a secret variable that is set but empty (exit 2), as "$(cat /missing)" gives', () => {
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_CLUSTER_SECRET: "" },
    "BLIXARD_CLUSTER_SECRET is set but empty: set it to the cluster secret, or unset it for a cluster without a secret",
  );
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_CLUSTER_SECRET_FILE: "" },
    "BLIXARD_CLUSTER_SECRET_FILE is set but empty: set it to the cluster secret's file, or unset it for a cluster without a secret",
  );
  assert.equal(parse(["--id", "1"], {}).clusterSecret, null);
});

Deno.test("parseNodeConfig() does not validate a variable that a flag overrides", () => {
  assert.equal(
    parse(["--id", "1", "--bind", "127.0.0.1:7001"], { BLIXARD_BIND: "bad" }).bindPort,
    7001,
  );
});

Deno.test("parseNodeConfig() treats an empty variable as unset", () => {
  const config = parse([], {
    BLIXARD_ID: "5",
    BLIXARD_BIND: "",
    BLIXARD_PEERS: "",
    BLIXARD_MDNS: "",
  });
  assert.equal(config.bindPort, 7005);
  assert.deepEqual(config.peers, []);
  assert.equal(config.mdnsEnabled, false);
});

Deno.test("parseNodeConfig() treats an empty --peers as no peers", () => {
  assert.deepEqual(parse(["--id", "1", "--peers", ""]).peers, []);
});

Deno.test("parseNodeConfig() returns a frozen config", () => {
  const config = parse(["--id", "1", "--peers", "a.example:7001"]);
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.peers));
});

Deno.test("parseNodeConfig() requires --id as an integer ≥ 1", () => {
  assertUsageError(
    [],
    {},
    "--id is required (or BLIXARD_ID): the cluster node id, an integer ≥ 1",
  );
  assertUsageError(["--id", "0"], {}, "--id 0: must be an integer ≥ 1");
  assertUsageError(
    ["--id", "-1"],
    {},
    "--id: needs a value; for a value that starts with '-', write --id=VALUE",
  );
  assertUsageError(["--id=-1"], {}, "--id -1: must be an integer ≥ 1");
  assertUsageError(["--id", "1.5"], {}, "--id 1.5: must be an integer ≥ 1");
  assertUsageError(["--id", "01"], {}, "--id 01: must be an integer ≥ 1");
  assertUsageError([], { BLIXARD_ID: "two" }, "BLIXARD_ID=two: must be an integer ≥ 1");
  assertUsageError(
    ["--id", "9007199254740993"],
    {},
    "--id 9007199254740993: must be at most 9007199254740991",
  );
});

Deno.test("parseNodeConfig() refuses an id whose default bind port is out of range", () => {
  assert.equal(parse(["--id", "57535"]).httpPort, 65535);
  assertUsageError(
    ["--id", "57536"],
    {},
    "--id 57536: the default bind port 7000+id must be at most 64535; give --bind host:port",
  );
  assert.equal(parse(["--id", "57536", "--bind", "127.0.0.1:7001"]).nodeId, 57536);
});

Deno.test("parseNodeConfig() checks the --bind port leaves room for the HTTP port", () => {
  assert.equal(parse(["--id", "1", "--bind", "127.0.0.1:64535"]).httpPort, 65535);
  assert.equal(parse(["--id", "1", "--bind", "127.0.0.1:1"]).httpPort, 1001);
  assertUsageError(
    ["--id", "1", "--bind", "127.0.0.1:70000"],
    {},
    `--bind 127.0.0.1:70000: ${PORT_RULE}`,
  );
  assertUsageError(
    ["--id", "1", "--bind", "127.0.0.1:64536"],
    {},
    `--bind 127.0.0.1:64536: ${PORT_RULE}`,
  );
  assertUsageError(["--id", "1", "--bind", "127.0.0.1:0"], {}, `--bind 127.0.0.1:0: ${PORT_RULE}`);
  assertUsageError(["--id", "1", "--bind", "127.0.0.1:"], {}, `--bind 127.0.0.1:: ${PORT_RULE}`);
  assertUsageError(["--id", "1", "--bind", "127.0.0.1:x"], {}, `--bind 127.0.0.1:x: ${PORT_RULE}`);
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_BIND: "h:99999" },
    `BLIXARD_BIND=h:99999: ${PORT_RULE}`,
  );
});

Deno.test("parseNodeConfig() checks the --bind host", () => {
  assert.equal(parse(["--id", "1", "--bind", "0.0.0.0:7001"]).bindHost, "0.0.0.0");
  assert.equal(parse(["--id", "1", "--bind", "[fe80::1]:7001"]).bindHost, "fe80::1");
  // The P2P endpoint binds an address: a name was accepted here and then failed at bind.
  assertUsageError(
    ["--id", "1", "--bind", "localhost:7001"],
    {},
    "--bind localhost:7001: the host must be an IP address, e.g. 127.0.0.1:7001, 0.0.0.0:7001 or [::1]:7001",
  );
  const cases: Array<[string, string]> = [
    ["127.0.0.1", "must be host:port, e.g. 127.0.0.1:7001 or [::1]:7001"],
    [":7001", "the host is empty"],
    ["::1:7001", "an IPv6 address needs brackets, e.g. [::1]:7001"],
    ["[::1]7001", "an IPv6 address must be written [address]:port, e.g. [::1]:7001"],
    ["[::g]:7001", "::g is not a valid IPv6 address"],
    ["256.0.0.1:7001", "256.0.0.1 is not a valid IPv4 address"],
    ["10.0.1:7001", "10.0.1 is not a valid IPv4 address"],
    [
      "bad_-.host!:7001",
      "bad_-.host! is not a valid host name (letters, digits, '-', '_' in dot-separated labels)",
    ],
    [
      "-lead.example:7001",
      "-lead.example is not a valid host name (letters, digits, '-', '_' in dot-separated labels)",
    ],
  ];
  for (const [bind, rule] of cases) {
    assertUsageError(["--id", "1", `--bind=${bind}`], {}, `--bind ${bind}: ${rule}`);
  }
});

Deno.test("parseHostPort() returns the host without brackets and the port", () => {
  assert.deepEqual(parseHostPort("[::1]:7001"), { host: "::1", port: 7001 });
  assert.deepEqual(parseHostPort("node-1.example:7002"), { host: "node-1.example", port: 7002 });
  assert.equal(typeof parseHostPort("node-1.example"), "string");
});

Deno.test("parseNodeConfig() checks each --peers entry and names the bad one", () => {
  assertUsageError(
    ["--id", "1", "--peers", "127.0.0.1:7001,127.0.0.1:70000"],
    {},
    `--peers 127.0.0.1:7001,127.0.0.1:70000: peer 127.0.0.1:70000: ${PORT_RULE}`,
  );
  assertUsageError(
    ["--id", "1", "--peers", "a.example:7001,,b.example:7001"],
    {},
    `--peers a.example:7001,,b.example:7001: peer "": is empty; separate peers with single commas`,
  );
  assertUsageError(
    ["--id", "1", "--peers", "ftp://seed.example"],
    {},
    "--peers ftp://seed.example: peer ftp://seed.example: must be an http:// or https:// URL",
  );
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_PEERS: "http://user:pw@seed.example/bootstrap" },
    "BLIXARD_PEERS=http://user:pw@seed.example/bootstrap: peer http://user:pw@seed.example/bootstrap: must not hold credentials: they would be logged",
  );
  assertUsageError(
    ["--id", "1", "--peers", "http://"],
    {},
    "--peers http://: peer http://: is not a valid URL",
  );
  assertUsageError(
    ["--id", "1", "--peers", "dns:bad name"],
    {},
    `--peers "dns:bad name": peer "dns:bad name": "bad name" is not a valid host name (letters, digits, '-', '_' in dot-separated labels)`,
  );
});

Deno.test("parseNodeConfig() accepts a dns: name with a final dot, as the joiner does", () => {
  const config = parse(["--id", "1", "--peers", "dns:seeds.example.com."]);
  assert.deepEqual(config.peers, ["dns:seeds.example.com."]);
  assert.deepEqual(parsePeerEntry("dns:seeds.example.com."), {
    kind: "dns",
    entry: "dns:seeds.example.com.",
    name: "seeds.example.com.",
  });
});

Deno.test("parseNodeConfig() takes --dns-server as an IP address with an optional port", () => {
  assert.deepEqual(parse(["--id", "1", "--dns-server", "[::1]:5353"]).dnsServer, {
    ipAddr: "::1",
    port: 5353,
  });
  assertUsageError(
    ["--id", "1", "--dns-server", "ns.example:53"],
    {},
    "--dns-server ns.example:53: must be an IP address with an optional port, e.g. " +
      "127.0.0.1:5353 or [::1]:53",
  );
});

Deno.test("parseNodeConfig() accepts at most PEERS_MAX peers", () => {
  const peers = Array.from({ length: PEERS_MAX }, (_, index) => `10.0.0.${index + 1}:7001`);
  assert.equal(parse(["--id", "1", "--peers", peers.join(",")]).peers.length, PEERS_MAX);
  assert.throws(
    () => parse(["--id", "1", "--peers", [...peers, "10.0.1.1:7001"].join(",")]),
    (error: unknown) =>
      error instanceof UsageError && error.message.endsWith(`…: at most ${PEERS_MAX} peers`),
  );
});

Deno.test("parseNodeConfig() accepts only http and https relay URLs", () => {
  assertUsageError(
    ["--id", "1", "--relay-url", "relay.example"],
    {},
    "--relay-url relay.example: is not a valid URL",
  );
  assertUsageError(
    ["--id", "1", "--relay-url", "quic://relay.example"],
    {},
    "--relay-url quic://relay.example: must be an http:// or https:// URL",
  );
});

Deno.test("parseNodeConfig() reads --join-timeout as a duration with a unit", () => {
  const timeoutMs = (text: string) => parse(["--id", "1", "--join-timeout", text]).joinTimeoutMs;
  assert.equal(timeoutMs("500ms"), 500);
  assert.equal(timeoutMs("30s"), 30_000);
  assert.equal(timeoutMs("2m"), 120_000);
  assert.equal(timeoutMs("24h"), 86_400_000);
  const unitRule = "must be a whole number with a unit: ms, s, m or h (e.g. 500ms, 30s, 2m)";
  for (const text of ["30", "1.5s", "s", "3d", "30 s"]) {
    const shown = text.includes(" ") ? JSON.stringify(text) : text;
    assertUsageError(
      ["--id", "1", "--join-timeout", text],
      {},
      `--join-timeout ${shown}: ${unitRule}`,
    );
  }
  assertUsageError(
    ["--id", "1", "--join-timeout", "0s"],
    {},
    "--join-timeout 0s: must be greater than zero",
  );
  assertUsageError(
    ["--id", "1", "--join-timeout", "25h"],
    {},
    "--join-timeout 25h: must be at most 24h",
  );
});

Deno.test("parseNodeConfig() accepts only the documented log levels and formats", () => {
  for (const level of ["trace", "debug", "info", "warning", "error"]) {
    assert.equal(parse(["--id", "1", "--log-level", level]).logLevel, level);
  }
  assertUsageError(
    ["--id", "1", "--log-level", "warn"],
    {},
    "--log-level warn: must be one of trace, debug, info, warning, error",
  );
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_LOG_FORMAT: "xml" },
    "BLIXARD_LOG_FORMAT=xml: must be one of text, json",
  );
});

Deno.test("parseNodeConfig() refuses paths with a NUL character", () => {
  assertUsageError(
    ["--id", "1", "--data-dir", "a\0b"],
    {},
    '--data-dir "a\\u0000b": must not contain a NUL character',
  );
});

Deno.test("parseNodeConfig() reads mDNS from --mdns, BLIXARD_MDNS, then the original variable", () => {
  assert.equal(parse(["--id", "1"], { BLIXARD_ENABLE_MDNS_DISCOVERY: "true" }).mdnsEnabled, true);
  assert.equal(parse(["--id", "1"], { BLIXARD_ENABLE_MDNS_DISCOVERY: "0" }).mdnsEnabled, false);
  assert.equal(
    parse(["--id", "1"], { BLIXARD_MDNS: "no", BLIXARD_ENABLE_MDNS_DISCOVERY: "yes" }).mdnsEnabled,
    false,
  );
  assert.equal(
    parse(["--id", "1", "--mdns"], { BLIXARD_MDNS: "false" }).mdnsEnabled,
    true,
  );
});

Deno.test("parseNodeConfig() accepts true/false/1/0/yes/no in any case and names a bad variable", () => {
  for (
    const [word, value] of [["TRUE", true], ["False", false], ["1", true], ["0", false], [
      "Yes",
      true,
    ], ["NO", false]] as const
  ) {
    assert.equal(parse(["--id", "1"], { BLIXARD_MDNS: word }).mdnsEnabled, value);
  }
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_ENABLE_MDNS_DISCOVERY: "maybe" },
    "BLIXARD_ENABLE_MDNS_DISCOVERY=maybe: must be one of true, false, 1, 0, yes, no",
  );
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_MDNS: "constructor" },
    "BLIXARD_MDNS=constructor: must be one of true, false, 1, 0, yes, no",
  );
});

Deno.test("parseNodeConfig() refuses BLIXARD_P2P_ENABLED=false and accepts true or unset", () => {
  assert.equal(parse(["--id", "1"], { BLIXARD_P2P_ENABLED: "true" }).nodeId, 1);
  assert.equal(parse(["--id", "1"], { BLIXARD_P2P_ENABLED: "" }).nodeId, 1);
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_P2P_ENABLED: "false" },
    "BLIXARD_P2P_ENABLED=false: Iroh P2P is the only transport; unset BLIXARD_P2P_ENABLED",
  );
  assertUsageError(
    ["--id", "1"],
    { BLIXARD_P2P_ENABLED: "off" },
    "BLIXARD_P2P_ENABLED=off: must be one of true, false, 1, 0, yes, no",
  );
});

Deno.test("parseNodeConfig() names unknown flags, stray arguments and missing values", () => {
  assertUsageError(
    ["--id", "1", "--port", "7001"],
    {},
    "--port: unknown flag; see 'blixard node --help'",
  );
  assertUsageError(["--id", "1", "-x"], {}, "-x: unknown flag; see 'blixard node --help'");
  assertUsageError(
    ["--id", "1", "extra"],
    {},
    "extra: unexpected argument; blixard node takes only flags",
  );
  assertUsageError(["--id"], {}, "--id: needs a value");
  assertUsageError(["--id", "1", "--mdns=yes"], {}, "--mdns: takes no value");
  assertUsageError(["--id", "1", "--id", "2"], {}, "--id: given more than once; give it once");
});

Deno.test("parseNodeConfig() answers --help with the node usage, whatever else is given", () => {
  for (const args of [["--help"], ["-h"], ["--id", "0", "--bogus", "--help"]]) {
    assert.throws(
      () => parse(args),
      (error: unknown) => error instanceof HelpRequested && error.text === NODE_USAGE,
    );
  }
});

Deno.test("parseNodeConfig() keeps every error message on one short line", () => {
  const longValue = "x".repeat(5000) + "\n";
  assert.throws(
    () => parse(["--id", "1", "--bind", longValue]),
    (error: unknown) =>
      error instanceof UsageError && !error.message.includes("\n") && error.message.length < 400,
  );
});
