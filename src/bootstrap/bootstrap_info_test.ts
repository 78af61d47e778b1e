import assert from "node:assert/strict";
import fc from "fast-check";
import { SecretKey } from "../transport/iroh.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import { type BootstrapInfo, bootstrapInfoFor, parseBootstrapInfo } from "./bootstrap_info.ts";

const PEER = "127.0.0.1:7001";
const P2P_NODE_ID = SecretKey.generate().public().toString();

const valid = {
  node_id: 1,
  p2p_node_id: P2P_NODE_ID,
  p2p_addresses: ["127.0.0.1:7001", "[::1]:7001"],
  p2p_relay_url: null,
  cluster_id: "c0ffee",
  leader_id: 1,
};

function parseWith(changes: Record<string, unknown>): BootstrapInfo {
  return parseBootstrapInfo(JSON.stringify({ ...valid, ...changes }), PEER);
}

function rejectsAs(field: string | null, message: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof BootstrapError && error.field === field && error.peer === PEER &&
    message.test(error.message) && !error.message.includes("\n");
}

Deno.test("parseBootstrapInfo() accepts a valid body, with and without the optional fields", () => {
  assert.deepStrictEqual(parseWith({}), valid);
  const minimal = { ...valid, cluster_id: undefined, leader_id: undefined };
  assert.deepStrictEqual(parseWith(minimal), JSON.parse(JSON.stringify(minimal)));
  assert.equal(parseWith({ signature: "ab12" }).signature, "ab12");
});

Deno.test("parseBootstrapInfo() gives addresses in canonical form", () => {
  assert.deepStrictEqual(parseWith({ p2p_addresses: ["[2001:DB8:0::1]:7001"] }).p2p_addresses, [
    "[2001:db8::1]:7001",
  ]);
});

Deno.test("parseBootstrapInfo() names the peer and the field of each bad value", () => {
  const table: [Record<string, unknown>, string, RegExp][] = [
    [{ node_id: 0 }, "node_id", /field node_id: must be an integer ≥ 1$/],
    [{ node_id: "1" }, "node_id", /field node_id: must be an integer/],
    [{ node_id: 1.5 }, "node_id", /field node_id/],
    [{ node_id: undefined }, "node_id", /field node_id: missing$/],
    [{ p2p_node_id: "abc" }, "p2p_node_id", /field p2p_node_id: not a valid Iroh endpoint id$/],
    [{ p2p_node_id: P2P_NODE_ID.toUpperCase() }, "p2p_node_id", /not a valid Iroh endpoint id/],
    [{ p2p_node_id: 7 }, "p2p_node_id", /not a valid Iroh endpoint id/],
    [{ p2p_addresses: "127.0.0.1:7001" }, "p2p_addresses", /field p2p_addresses: must be an array/],
    [
      { p2p_addresses: ["127.0.0.1:7001", "localhost:7001"] },
      "p2p_addresses[1]",
      /field p2p_addresses\[1\]: "localhost:7001" is not a dialable "ip:port" address$/,
    ],
    [{ p2p_addresses: ["0.0.0.0:7001"] }, "p2p_addresses[0]", /not a dialable/],
    [{ p2p_addresses: ["127.0.0.1:0"] }, "p2p_addresses[0]", /not a dialable/],
    [{ p2p_addresses: [] }, "p2p_addresses", /not empty unless p2p_relay_url is set$/],
    [{ p2p_addresses: Array(17).fill("127.0.0.1:1") }, "p2p_addresses", /at most 16/],
    [{ p2p_relay_url: "ftp://relay" }, "p2p_relay_url", /field p2p_relay_url: must be an http/],
    [{ p2p_relay_url: 3 }, "p2p_relay_url", /must be an http\(s\) URL or null$/],
    [{ cluster_id: 5 }, "cluster_id", /field cluster_id: must be a string/],
    [{ cluster_id: "" }, "cluster_id", /field cluster_id/],
    [{ leader_id: -1 }, "leader_id", /field leader_id: must be an integer ≥ 1 or null$/],
    [{ signature: null }, "signature", /field signature: must be a string/],
    [{ color: "blue" }, "color", /field color: not a BootstrapInfo field$/],
  ];
  for (const [changes, field, message] of table) {
    assert.throws(() => parseWith(changes), rejectsAs(field, message), JSON.stringify(changes));
  }
});

Deno.test("parseBootstrapInfo() accepts no addresses when a relay URL is given", () => {
  const info = parseWith({ p2p_addresses: [], p2p_relay_url: "https://relay.example:443/" });
  assert.deepStrictEqual(info.p2p_addresses, []);
});

Deno.test("parseBootstrapInfo() refuses bodies that are not one JSON object", () => {
  const cases: [string, RegExp][] = [
    ["<html>", /^peer 127\.0\.0\.1:7001: \/bootstrap body: not JSON/],
    ["", /not JSON/],
    ["[1,2]", /\/bootstrap body: not a JSON object$/],
    ["null", /not a JSON object/],
    [" ".repeat(70_000), /exceeds 65536 bytes/],
  ];
  for (const [body, message] of cases) {
    assert.throws(
      () => parseBootstrapInfo(body, PEER),
      (error) =>
        error instanceof BootstrapError && error.field === null && message.test(error.message),
      JSON.stringify(body.slice(0, 20)),
    );
  }
});

Deno.test("parseBootstrapInfo() returns a value or a BootstrapError for any JSON or text", () => {
  const bodies = fc.oneof(fc.jsonValue().map((json) => JSON.stringify(json)), fc.string());
  fc.assert(
    fc.property(bodies, (body) => {
      try {
        parseBootstrapInfo(body, PEER);
      } catch (error) {
        assert.ok(error instanceof BootstrapError, String(error));
      }
    }),
  );
});

Deno.test("parseBootstrapInfo() names the replaced field when a valid body gets a bad value", () => {
  const fields = Object.keys(valid) as (keyof typeof valid)[];
  fc.assert(
    fc.property(fc.constantFrom(...fields), fc.jsonValue(), (field, value) => {
      try {
        parseWith({ [field]: value });
      } catch (error) {
        assert.ok(error instanceof BootstrapError);
        assert.equal(error.field?.replace(/\[\d+\]$/, ""), field, error.message);
      }
    }),
  );
});

Deno.test("bootstrapInfoFor() describes an endpoint in a form parseBootstrapInfo() accepts", () => {
  const endpoint = {
    nodeId: P2P_NODE_ID,
    homeRelayUrl: () => null,
    addresses: () => ["127.0.0.1:7001"],
  };
  const info = bootstrapInfoFor(endpoint, { nodeId: 3, clusterId: "c1" });
  assert.deepStrictEqual(info, {
    node_id: 3,
    p2p_node_id: P2P_NODE_ID,
    p2p_addresses: ["127.0.0.1:7001"],
    p2p_relay_url: null,
    cluster_id: "c1",
    leader_id: null,
  });
  assert.deepStrictEqual(parseBootstrapInfo(JSON.stringify(info), PEER), info);
  assert.throws(() => bootstrapInfoFor({ ...endpoint, addresses: () => [] }, { nodeId: 3 }));
});

Deno.test("parseBootstrapInfo() refuses a body that is not JSON in one line, whatever control characters the body holds (found by fuzzing)", () => {
  const body = `{"node_id":1,"signature":\nforged log line\r\u0000"}`;
  assert.throws(
    () => parseBootstrapInfo(body, PEER),
    rejectsAs(null, /^peer .*: \/bootstrap body: not JSON/),
  );
});

Deno.test("bootstrapInfoFor() advertises the relay the endpoint is connected to, not a configured one", () => {
  const connected = {
    nodeId: P2P_NODE_ID,
    homeRelayUrl: () => "https://relay.example/",
    addresses: () => [],
  };
  // Relay only: no direct address is needed when the relay is reachable.
  assert.equal(bootstrapInfoFor(connected, { nodeId: 3 }).p2p_relay_url, "https://relay.example/");
});
