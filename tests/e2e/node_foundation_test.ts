/**
 * End-to-end tests of one node's foundation: identity, `/bootstrap`, `/metrics`, the seed
 * connection of a second node, clean stops, and the errors a user can cause at start.
 * Every test spawns real `main.ts` children on 127.0.0.1 with OS-chosen ports.
 */

import assert from "node:assert/strict";
import { SecretKey } from "../../src/transport/iroh.ts";
import { NodeGroup, NodeProcess } from "../helpers/node_process.ts";
import { bindUdp, closeUdp, freeBindPort, isTcpPortFree, isUdpPortFree } from "../helpers/ports.ts";
import { parseExposition } from "../helpers/prometheus.ts";

function p2pIdOfKeyFile(dataDir: string): string {
  const hex = Deno.readTextFileSync(`${dataDir}/identity.key`).trim();
  const bytes = Array.from(
    { length: hex.length / 2 },
    (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16),
  );
  return SecretKey.fromBytes(bytes).public().toString();
}

Deno.test("/bootstrap has the seed's four fields, with the P2P id of identity.key", async () => {
  const group = new NodeGroup();
  try {
    const node = await group.start({ id: 1 });
    await node.waitForHealthy();
    const info = await node.getJson("/bootstrap");
    assert.equal(info.node_id, 1);
    assert.equal(info.p2p_node_id, p2pIdOfKeyFile(node.dataDir));
    assert.deepEqual(info.p2p_addresses, [node.address]);
    assert.equal(info.p2p_relay_url, null);
    const mode = Deno.statSync(`${node.dataDir}/identity.key`).mode! & 0o777;
    assert.equal(mode, 0o600);
  } finally {
    await group.cleanup();
  }
});

Deno.test("a restarted node keeps its p2p_node_id", async () => {
  const group = new NodeGroup();
  try {
    const first = await group.start({ id: 1 });
    await first.waitForHealthy();
    const before = (await first.getJson("/bootstrap")).p2p_node_id;
    assert.equal((await first.stop()).code, 0);
    const second = await group.start({ id: 1, bindPort: first.bindPort });
    await second.waitForHealthy();
    assert.equal((await second.getJson("/bootstrap")).p2p_node_id, before);
  } finally {
    await group.cleanup();
  }
});

Deno.test("a node with --peers verifies the first node's P2P id over Iroh with a ping", async () => {
  const group = new NodeGroup();
  try {
    const first = await group.start({ id: 1 });
    await first.waitForHealthy();
    const firstId = (await first.getJson("/bootstrap")).p2p_node_id as string;
    const second = await group.start({ id: 2, peers: [first.address] });
    const line = await second.waitForLog(/seed found/);
    assert.ok(line.includes(`node 1, P2P id ${firstId}`), `the verified seed is logged: ${line}`);
  } finally {
    await group.cleanup();
  }
});

Deno.test("with one dead and one live peer the seed is still found", async () => {
  const group = new NodeGroup();
  try {
    const live = await group.start({ id: 1 });
    await live.waitForHealthy();
    const deadAddress = `127.0.0.1:${await freeBindPort()}`;
    const joiner = await group.start({ id: 2, peers: [deadAddress, live.address] });
    const line = await joiner.waitForLog(/seed found/);
    assert.ok(line.includes(live.address), line);
  } finally {
    await group.cleanup();
  }
});

Deno.test("/metrics is Prometheus text with blixard_ names that count requests", async () => {
  const group = new NodeGroup();
  try {
    const node = await group.start({ id: 1 });
    await node.waitForHealthy();
    await node.getJson("/bootstrap");
    const response = await fetch(`http://127.0.0.1:${node.httpPort}/metrics`);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
    const exposition = parseExposition(await response.text());
    assert.ok(exposition.types.size > 5);
    for (const name of exposition.types.keys()) assert.ok(name.startsWith("blixard_"), name);
    const bootstrapRequests = exposition.samples.get(
      'blixard_http_requests_total{route="/bootstrap",status="200"}',
    );
    assert.ok(bootstrapRequests !== undefined && bootstrapRequests >= 1);
  } finally {
    await group.cleanup();
  }
});

Deno.test("SIGTERM stops a node with exit code 0 and frees both ports", async () => {
  const group = new NodeGroup();
  try {
    const node = await group.start({ id: 1 });
    await node.waitForHealthy();
    const status = await node.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.ok(await isUdpPortFree(node.bindPort), "UDP port freed");
    assert.ok(isTcpPortFree(node.httpPort), "HTTP port freed");
    assert.match(node.stderr, /stopped/);
  } finally {
    await group.cleanup();
  }
});

async function startExpectingFailure(group: NodeGroup, node: NodeProcess): Promise<string> {
  const status = await node.exited;
  assert.notEqual(status.code, 0, `node ${node.id} should have failed:\n${node.stderr}`);
  const lines = node.stderr.trim().split("\n");
  void group;
  return lines[lines.length - 1] ?? "";
}

Deno.test("a bad flag exits 2 with one line naming the flag, the value and the rule", async () => {
  const group = new NodeGroup();
  try {
    const node = await group.start({
      id: 1,
      rawArgs: ["node", "--id", "1", "--bind", "127.0.0.1:70000"],
    });
    const status = await node.exited;
    assert.equal(status.code, 2);
    assert.equal(node.stderr.trim().split("\n").length, 1, node.stderr);
    assert.match(node.stderr, /--bind 127\.0\.0\.1:70000: port must be 1–64535/);
  } finally {
    await group.cleanup();
  }
});

Deno.test("BLIXARD_P2P_ENABLED=false is refused with a clear message", async () => {
  const group = new NodeGroup();
  try {
    const node = await group.start({ id: 1, env: { BLIXARD_P2P_ENABLED: "false" } });
    assert.equal((await node.exited).code, 2);
    assert.match(node.stderr, /BLIXARD_P2P_ENABLED=false: Iroh P2P is the only transport/);
  } finally {
    await group.cleanup();
  }
});

Deno.test("an HTTP port in use fails the start with a line naming it, and frees the UDP port", async () => {
  const group = new NodeGroup();
  const bindPort = await freeBindPort();
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: bindPort + 1000 });
  try {
    const node = await group.start({ id: 1, bindPort });
    const line = await startExpectingFailure(group, node);
    assert.equal(node.exitStatus?.code, 1);
    assert.match(line, new RegExp(`127\\.0\\.0\\.1:${bindPort + 1000} is in use`));
    assert.ok(await isUdpPortFree(bindPort), "the UDP port bound before the failure is released");
    assert.deepEqual(
      Array.from(Deno.readDirSync(node.dataDir), (entry) => entry.name).sort(),
      ["LOCK", "identity.key"],
      "a failed start writes nothing but the identity",
    );
  } finally {
    blocker.close();
    await group.cleanup();
  }
});

Deno.test("a UDP port in use fails the start with a line naming it", async () => {
  const group = new NodeGroup();
  const bindPort = await freeBindPort();
  const blocker = await bindUdp(bindPort);
  try {
    const node = await group.start({ id: 1, bindPort });
    const line = await startExpectingFailure(group, node);
    assert.equal(node.exitStatus?.code, 1);
    assert.match(line, new RegExp(`127\\.0\\.0\\.1:${bindPort}`));
    assert.match(line, /in use/);
  } finally {
    await closeUdp(blocker);
    await group.cleanup();
  }
});

Deno.test("a second node on the same data dir is refused with the pid holding it", async () => {
  const group = new NodeGroup();
  try {
    const first = await group.start({ id: 1 });
    await first.waitForHealthy();
    const second = await group.start({ id: 1, dataDir: first.dataDir });
    const line = await startExpectingFailure(group, second);
    assert.equal(second.exitStatus?.code, 1);
    assert.match(line, new RegExp(`in use by another blixard process \\(pid ${first.pid}\\)`));
  } finally {
    await group.cleanup();
  }
});

Deno.test("a malformed identity.key is fatal and never replaced", async () => {
  const group = new NodeGroup();
  try {
    const dataDir = group.dataDirFor(1);
    Deno.writeTextFileSync(`${dataDir}/identity.key`, "not a key\n", { mode: 0o600 });
    const node = await group.start({ id: 1 });
    const line = await startExpectingFailure(group, node);
    assert.equal(node.exitStatus?.code, 1);
    assert.match(line, /identity\.key/);
    assert.equal(Deno.readTextFileSync(`${dataDir}/identity.key`), "not a key\n");
  } finally {
    await group.cleanup();
  }
});

Deno.test("a joiner whose only peer is down exits non-zero after the join timeout, naming it", async () => {
  const group = new NodeGroup();
  try {
    const deadAddress = `127.0.0.1:${await freeBindPort()}`;
    const node = await group.start({ id: 2, peers: [deadAddress], args: ["--join-timeout", "1s"] });
    await startExpectingFailure(group, node);
    assert.equal(node.exitStatus?.code, 1);
    assert.match(node.stderr, new RegExp(`no seed found.*${deadAddress.replaceAll(".", "\\.")}`));
    assert.deepEqual(
      Array.from(Deno.readDirSync(node.dataDir), (entry) => entry.name).sort(),
      ["LOCK", "identity.key"],
      "a failed join leaves nothing but the identity",
    );
  } finally {
    await group.cleanup();
  }
});

Deno.test("a cluster secret file that others may read fails the start with one line naming it, before anything is written", async () => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-secret-" });
  try {
    const secretPath = `${secretDir}/secret`;
    Deno.writeTextFileSync(secretPath, "a secret of more than sixteen bytes\n");
    Deno.chmodSync(secretPath, 0o644);
    const node = await group.start({ id: 1, args: ["--cluster-secret-file", secretPath] });
    const line = await startExpectingFailure(group, node);
    assert.equal(node.exitStatus?.code, 1);
    assert.equal(
      line,
      `blixard: --cluster-secret-file ${secretPath}: group or others may access it (mode 0644): ` +
        "run chmod 600 on it",
    );
    assert.doesNotMatch(node.stderr, /sixteen bytes/, "the secret is not shown");
    assert.deepEqual(Array.from(Deno.readDirSync(node.dataDir)), [], "nothing written");
  } finally {
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
});
