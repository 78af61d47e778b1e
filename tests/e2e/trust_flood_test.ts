/**
 * A stranger must never be able to lock out an operator or a joiner (DESIGN.md section 8,
 * issue 9 items 4–7). A real node with a cluster secret on 127.0.0.1; the stranger floods
 * it from 127.0.0.2 (another machine, as far as the node can tell) while the operator
 * runs the CLI from 127.0.0.1, and the operator's commands must succeed. Every flood is
 * bounded in count and in time.
 */

import assert from "node:assert/strict";
import { CHALLENGE_RPC } from "../../src/auth/auth_rpcs.ts";
import { PING_RPC } from "../../src/transport/ping_rpc.ts";
import { RpcClient } from "../../src/transport/rpc.ts";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import {
  attackerEndpoint,
  type Flood,
  floodHttp,
  peerAddressOf,
  startFlood,
} from "../helpers/flood.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import type { P2pEndpoint } from "../../src/transport/p2p_endpoint.ts";

const SECRET_TEXT = "e2e flood secret 5c1e0a9b7d3f2e4a6b8c0d1e2f3a4b5c";

function writeSecretFile(dir: string): string {
  const path = `${dir}/secret`;
  Deno.writeTextFileSync(path, `${SECRET_TEXT}\n`);
  Deno.chmodSync(path, 0o600);
  return path;
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

/** Floods `cluster.challenge` from `keys` strangers' keys on 127.0.0.2. */
async function floodChallenges(
  node: NodeProcess,
  options: { keys: number; concurrency: number; countMax: number },
): Promise<{ flood: Flood; close: () => Promise<void> }> {
  const peer = await peerAddressOf(node);
  const endpoints: P2pEndpoint[] = [];
  for (let index = 0; index < options.keys; index++) endpoints.push(await attackerEndpoint());
  const clients = endpoints.map((endpoint) => new RpcClient(endpoint));
  // Each stranger must reach the node before the flood, or it only floods its own connects.
  for (const client of clients) await client.call(peer, PING_RPC, {}, { timeoutMs: 15_000 });
  let next = 0;
  const flood = startFlood(async () => {
    const client = clients[next++ % clients.length]!;
    await client.call(peer, CHALLENGE_RPC, {}, { timeoutMs: 5_000 });
    return true;
  }, options);
  return {
    flood,
    close: async () => {
      await flood.stop();
      for (const client of clients) await client.close();
      for (const endpoint of endpoints) await endpoint.close();
    },
  };
}

Deno.test("a stranger flooding from another address does not lock out the operator", async (t) => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-flood-e2e-" });
  const secretFile = writeSecretFile(secretDir);
  try {
    const node = await group.start({ id: 1, args: ["--cluster-secret-file", secretFile] });
    await waitForVoters(node, 1);

    await t.step(
      "/bootstrap and cluster.challenge floods from 127.0.0.2: the operator's kv put and get succeed",
      async () => {
        const bootstrapFlood = floodHttp(node, "/bootstrap", { concurrency: 8, countMax: 50_000 });
        const challenges = await floodChallenges(node, {
          keys: 4,
          concurrency: 8,
          countMax: 50_000,
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
  } finally {
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
});
