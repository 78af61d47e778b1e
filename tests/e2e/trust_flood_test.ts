/**
 * A stranger must never be able to lock out an operator or a joiner (DESIGN.md section 8,
 * issue 9 items 4–7). A real node with a cluster secret on 127.0.0.1; the stranger floods
 * it from 127.0.0.2 (another machine, as far as the node can tell) while the operator
 * runs the CLI from 127.0.0.1, and the operator's commands must succeed. Every flood is
 * bounded in count and in time.
 */

import assert from "node:assert/strict";
import { UNAUTHENTICATED } from "../../src/auth/auth_rpcs.ts";
import { PING_RPC } from "../../src/transport/ping_rpc.ts";
import { REFUSED_CONNECTION_LOG_LIMIT } from "../../src/transport/raft_transport.ts";
import { RpcClient } from "../../src/transport/rpc.ts";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import {
  askChallenge,
  attackerEndpoint,
  connectRaftAsStranger,
  floodHttp,
  floodRpc,
  holdConnections,
  holdHalfSentRequests,
  openUnfinishedStreams,
  peerAddressOf,
  sendOversizedRequest,
} from "../helpers/flood.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { parseExposition } from "../helpers/prometheus.ts";
import { RawRpc } from "../helpers/raw_rpc.ts";
import { SECRET_TEXT, writeSecretFile } from "../helpers/secrets.ts";

/** The cluster secret in a 0600 file of `dir`. */
function writeSecretFileIn(dir: string): string {
  return writeSecretFile(dir, "secret", SECRET_TEXT);
}

/** The operator's `kv put` then `kv get` through the CLI; both must exit 0. */
async function assertOperatorWritesAndReads(
  node: NodeProcess,
  secretFile: string,
  key: string,
): Promise<void> {
  const common = ["--peer", node.address, "--cluster-secret-file", secretFile];
  const put = await runBlixard(["kv", "put", key, `value of ${key}`, ...common]);
  assert.equal(put.code, 0, describeRun(put));
  const get = await runBlixard(["kv", "get", key, ...common]);
  assert.equal(get.code, 0, describeRun(get));
  assert.equal(get.stdout, `value of ${key}\n`, describeRun(get));
}

Deno.test("a stranger flooding from another address does not lock out the operator", async (t) => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-flood-e2e-" });
  const secretFile = writeSecretFileIn(secretDir);
  try {
    const node = await group.start({ id: 1, args: ["--cluster-secret-file", secretFile] });
    await waitForVoters(node, 1);

    await t.step(
      "/bootstrap and cluster.challenge floods from 127.0.0.2: the operator's kv put and get succeed",
      async () => {
        const bootstrapFlood = floodHttp(node, "/bootstrap", { concurrency: 8, countMax: 50_000 });
        const challenges = await floodRpc(node, {
          keys: 4,
          concurrency: 8,
          countMax: 50_000,
          call: askChallenge,
        });
        try {
          await bootstrapFlood.waitForSent(200);
          await challenges.flood.waitForSent(200);
          await assertOperatorWritesAndReads(node, secretFile, "during-request-flood");
        } finally {
          await bootstrapFlood.stop();
          await challenges.close();
        }
        assert.ok(
          bootstrapFlood.counts.refused > 0,
          `the stranger's /bootstrap flood was limited: ${JSON.stringify(bootstrapFlood.counts)}`,
        );
        assert.ok(
          challenges.flood.counts.refused > 0,
          `the stranger's challenge flood was limited: ${JSON.stringify(challenges.flood.counts)}`,
        );
      },
    );

    await t.step(
      "256 idle stranger connections from 127.0.0.2: the operator's ping and kv put succeed",
      async () => {
        const held = await holdConnections(node, { keys: 8, perKey: 32 });
        try {
          await assertOperatorPings(node);
          await assertOperatorWrites(node, secretFile, "during-idle-connections");
          assert.ok(held.refused > 0, `some of 256 connections were refused: ${held.refused}`);
        } finally {
          await held.close();
        }
      },
    );

    await t.step(
      "12 stranger connections with 100 unfinished streams each: the operator's ping and kv put succeed",
      async () => {
        const held = await holdConnections(node, { keys: 3, perKey: 4 });
        try {
          const { opened } = await openUnfinishedStreams(held.connections, 100);
          assert.ok(opened > 0, "the stranger opened unfinished streams");
          await assertOperatorPings(node);
          await assertOperatorWrites(node, secretFile, "during-unfinished-streams");
        } finally {
          await held.close();
        }
      },
    );

    await t.step("a 1 MiB request from a stranger is refused before it is decoded", async () => {
      const endpoint = await attackerEndpoint();
      const client = new RpcClient(endpoint);
      try {
        const error = await sendOversizedRequest(client, await peerAddressOf(node));
        assert.ok(error !== null, "refused");
        assert.notEqual(error.code, UNAUTHENTICATED, "refused before the gate had to decode it");
        // StreamErrorCode.malformedFrame: refused at the frame's length prefix.
        assert.match(error.message, /Reset\(1\)|reset by the peer with code 1/, error.message);
      } finally {
        await client.close();
        await endpoint.close();
      }
    });

    await t.step(
      "50 half-sent HTTP requests from 127.0.0.2: /health answers, and the node closes them all",
      async () => {
        const held = await holdHalfSentRequests(node.httpPort, {
          count: 50,
          head: "GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n",
        });
        try {
          const health = await fetch(`http://127.0.0.1:${node.httpPort}/health`);
          assert.equal(health.status, 200);
          await health.body?.cancel();
          // Refused beyond the per-source cap at once; the rest at the header timeout (5 s).
          // The deadline is generous, and below hyper's own 30 s header timeout.
          const deadline = performance.now() + 20_000;
          while (held.stillOpen() > 0 && performance.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          assert.equal(held.stillOpen(), 0, "every half-sent request was closed by the node");
        } finally {
          held.close();
        }
      },
    );

    await t.step(
      "40 Raft connections from a stranger write a few WARN lines and count the rest in a metric",
      async () => {
        const refusedLines = () =>
          node.stderr.split("\n").filter((line) => /refused a Raft connection/.test(line)).length;
        const before = refusedLines();
        await connectRaftAsStranger(node, { count: 40, keys: 2 });
        const suppressed = await suppressedRaftLogLines(node, { atLeast: 30 });
        const written = refusedLines() - before;
        assert.ok(written <= REFUSED_CONNECTION_LOG_LIMIT.burst + 1, `${written} WARN lines`);
        assert.ok(written + suppressed >= 40, `${written} written, ${suppressed} suppressed`);
      },
    );
  } finally {
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
});

/** `blixard_log_lines_suppressed_total{event="raft_connection_refused"}`, once it is `atLeast`. */
async function suppressedRaftLogLines(
  node: NodeProcess,
  options: { atLeast: number },
): Promise<number> {
  const sample = 'blixard_log_lines_suppressed_total{event="raft_connection_refused"}';
  const deadline = performance.now() + 30_000;
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${node.httpPort}/metrics`);
    const value = parseExposition(await response.text()).samples.get(sample) ?? 0;
    if (value >= options.atLeast || performance.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A `ping` from a fresh key on 127.0.0.1 (the operator's machine) must be answered. */
async function assertOperatorPings(node: NodeProcess): Promise<void> {
  const operator = await RawRpc.connect(node);
  try {
    const pong = await operator.call(PING_RPC, {}, { timeoutMs: 10_000 });
    assert.equal(pong.nodeId, node.id);
  } finally {
    await operator.close();
  }
}

/** The operator's `kv put` through the CLI must exit 0. */
async function assertOperatorWrites(
  node: NodeProcess,
  secretFile: string,
  key: string,
): Promise<void> {
  const put = await runBlixard([
    "kv",
    "put",
    key,
    "value",
    "--peer",
    node.address,
    "--cluster-secret-file",
    secretFile,
  ]);
  assert.equal(put.code, 0, describeRun(put));
}

Deno.test("an impostor with a retired member's identity.key and a recorded /bootstrap neither receives the operator's writes nor serves its reads", async () => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-impostor-e2e-" });
  const secretFile = writeSecretFileIn(secretDir);
  const withSecret = ["--cluster-secret-file", secretFile];
  let recordedServer: Deno.HttpServer<Deno.NetAddr> | null = null;
  const impostorDir = Deno.makeTempDirSync({ prefix: "blixard-test-impostor-" });
  try {
    const first = await group.start({ id: 1, args: withSecret });
    await waitForVoters(first, 1);
    const retired = await group.start({ id: 2, peers: [first.address], args: withSecret });
    await waitForVoters(retired, 2);
    const recorded = await retired.getJson("/bootstrap");
    const leave = await runBlixard(["cluster", "leave", "--peer", retired.address, ...withSecret]);
    assert.equal(leave.code, 0, describeRun(leave));
    await retired.waitForExit();

    // The impostor: the retired member's key, at its old address, without the secret.
    Deno.copyFileSync(`${retired.dataDir}/identity.key`, `${impostorDir}/identity.key`);
    const impostor = await group.start({ id: 2, bindPort: retired.bindPort, dataDir: impostorDir });
    await waitForVoters(impostor, 1);
    const planted = await runBlixard([
      "kv",
      "put",
      "greeting",
      "forged",
      "--peer",
      impostor.address,
    ]);
    assert.equal(planted.code, 0, describeRun(planted));
    recordedServer = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => Response.json(recorded),
    );
    const recordedUrl = `http://127.0.0.1:${recordedServer.addr.port}/bootstrap`;

    const put = await runBlixard([
      "kv",
      "put",
      "greeting",
      "genuine",
      "--peer",
      recordedUrl,
      "--timeout",
      "3s",
      ...withSecret,
    ]);
    assert.notEqual(put.code, 0, describeRun(put));
    assert.match(put.stderr, /did not prove the cluster secret/, describeRun(put));
    const get = await runBlixard(["kv", "get", "greeting", "--peer", recordedUrl, ...withSecret]);
    assert.notEqual(get.code, 0, describeRun(get));
    assert.doesNotMatch(get.stdout, /forged/, describeRun(get));
    const onImpostor = await runBlixard(["kv", "get", "greeting", "--peer", impostor.address]);
    assert.equal(onImpostor.stdout, "forged\n", "the operator's put never reached the impostor");
  } finally {
    await recordedServer?.shutdown();
    await group.cleanup();
    await Deno.remove(impostorDir, { recursive: true });
    await Deno.remove(secretDir, { recursive: true });
  }
});
