/**
 * Cluster secrets end to end (DESIGN.md section 8), with real child nodes on 127.0.0.1:
 * a cluster whose nodes share a secret forms; joiners without it, with another one, or
 * led by a forged `/bootstrap` to a stranger's key are refused with one line and exit 1;
 * the CLI without the secret cannot write and with it can; strangers' RPCs other than
 * `ping` are refused; and the secret shows up in no log line or output.
 */

import assert from "node:assert/strict";
import { UNAUTHENTICATED } from "../../src/auth/auth_rpcs.ts";
import { parseBootstrapInfo } from "../../src/bootstrap/bootstrap_info.ts";
import { verifyBootstrapSignature } from "../../src/bootstrap/bootstrap_signature.ts";
import { GET_RPC, PUT_RPC, REMOVE_RPC, STATUS_RPC } from "../../src/transport/cluster_rpcs.ts";
import { PING_RPC } from "../../src/transport/ping_rpc.ts";
import { RpcError } from "../../src/transport/rpc.ts";
import { type CliRun, describeRun, runBlixard } from "../helpers/cli.ts";
import { agreedLeader, statusOf, waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { RawRpc } from "../helpers/raw_rpc.ts";
import {
  OTHER_SECRET_TEXT as WRONG_SECRET_TEXT,
  SECRET_TEXT,
  secretOf,
  writeSecretFile,
} from "../helpers/secrets.ts";

const encoder = new TextEncoder();
/**
 * Join timeout of the joiners that keep retrying a `/bootstrap` they refuse. Long enough
 * that the first attempt surely fetches and checks the answer on a loaded machine; the
 * joiners wait it out in parallel.
 */
const REFUSED_JOIN_TIMEOUT = "5s";
/**
 * The last round before a join timeout may get only what is left of it (down to 1 ms), so
 * the final line names either the refusal or that round's deadline; each attempt that got
 * an answer logged the refusal itself.
 */
const SIGNATURE_OR_DEADLINE =
  "/bootstrap( signature does not match this side's cluster secret|: no answer within \\d+ ms)";

/** The last log line of `node` that matches `pattern`. */
function logLine(node: NodeProcess, pattern: RegExp): string | undefined {
  return node.stderr.split("\n").findLast((line) => pattern.test(line));
}

/** `/bootstrap` of `node` as a joiner receives it. */
async function bootstrapOf(node: NodeProcess) {
  return parseBootstrapInfo(JSON.stringify(await node.getJson("/bootstrap")), node.address);
}

Deno.test("a cluster with a secret admits only callers that prove it", async (t) => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-secret-e2e-" });
  const secretFile = writeSecretFile(secretDir, "secret", SECRET_TEXT);
  const wrongSecretFile = writeSecretFile(secretDir, "wrong", WRONG_SECRET_TEXT);
  const secret = await secretOf(SECRET_TEXT);
  const cliRuns: CliRun[] = [];
  const withSecret = ["--cluster-secret-file", secretFile];
  try {
    const nodes: NodeProcess[] = [];
    await t.step("three nodes with the secret form a cluster, each /bootstrap signed", async () => {
      nodes.push(await group.start({ id: 1, args: withSecret }));
      await waitForVoters(nodes[0]!, 1);
      nodes.push(await group.start({ id: 2, peers: [nodes[0]!.address], args: withSecret }));
      await waitForVoters(nodes[1]!, 2);
      // Node 3 takes the secret itself from the environment, and joins through a follower.
      nodes.push(
        await group.start({
          id: 3,
          peers: [nodes[1]!.address],
          env: { BLIXARD_CLUSTER_SECRET: SECRET_TEXT },
        }),
      );
      for (const node of nodes) await waitForVoters(node, 3);
      for (const node of nodes) {
        await verifyBootstrapSignature(await bootstrapOf(node), { secret, peer: node.address });
      }
      assert.equal((await statusOf(nodes[2]!)).join?.phase, "voter");
      assert.ok(logLine(nodes[2]!, /proved the cluster secret to seed/), nodes[2]!.stderr);
      assert.doesNotMatch(nodes[0]!.stderr, /anyone who can reach/, "no warning with a secret");
    });

    await t.step(
      "joiners without the secret, with another one, or sent to another key by a forged /bootstrap exit 1 with one clear line",
      async () => {
        const forged = await startForgedBootstrap(group, nodes[0]!);
        try {
          const [withoutSecret, wrongSecret, misled] = await Promise.all([
            group.start({ id: 4, peers: [nodes[0]!.address] }),
            group.start({
              id: 5,
              peers: [nodes[1]!.address],
              args: [
                "--cluster-secret-file",
                wrongSecretFile,
                "--join-timeout",
                REFUSED_JOIN_TIMEOUT,
              ],
            }),
            group.start({
              id: 6,
              peers: [forged.url],
              args: [...withSecret, "--join-timeout", REFUSED_JOIN_TIMEOUT],
            }),
          ]);
          for (const joiner of [withoutSecret!, wrongSecret!, misled!]) {
            assert.equal((await joiner.waitForExit()).code, 1, joiner.stderr);
          }
          assert.match(
            logLine(withoutSecret!, /join failed: /) ?? "",
            /join failed: the cluster refused node 4: node 1 at 127\.0\.0\.1:\d+: this cluster requires the cluster secret: pass --cluster-secret-file/,
          );
          const refusing: [NodeProcess, string][] = [
            [wrongSecret!, nodes[1]!.address],
            [misled!, forged.url],
          ];
          for (const [joiner, peer] of refusing) {
            assert.match(
              logLine(joiner, /join failed: /) ?? "",
              new RegExp(`join failed: no seed found .*peer ${peer}: ${SIGNATURE_OR_DEADLINE}`),
              joiner.stderr,
            );
            assert.ok(
              logLine(
                joiner,
                new RegExp(
                  `peer ${peer}: /bootstrap signature does not match this side's cluster secret`,
                ),
              ),
              joiner.stderr,
            );
          }
          assert.match(
            logLine(wrongSecret!, /bootstrap signature does not match/) ?? "",
            /the cluster has another secret \(check --cluster-secret-file\)/,
          );
          assert.ok(forged.requests() > 0, "the misled joiner fetched the forged answer");
          const members = (await statusOf(nodes[0]!)).members.map((member) => member.node_id);
          assert.deepEqual(members, [1, 2, 3], "nobody joined");
          assert.deepEqual((await statusOf(forged.stranger)).members.map((m) => m.node_id), [1]);

          // The forgery itself works on a joiner without the secret: it joins the stranger.
          const fooled = await group.start({ id: 7, peers: [forged.url] });
          const fooledStatus = await waitForVoters(fooled, 2);
          assert.equal(fooledStatus.cluster_id, (await statusOf(forged.stranger)).cluster_id);
        } finally {
          await forged.close();
        }
      },
    );

    await t.step(
      "kv put through the CLI fails without the secret, naming the flag, and works with it",
      async () => {
        const peer = nodes[1]!.address;
        // The refused write and the read with another secret change nothing, so they run
        // beside the write and read that prove the secret (the read with another secret
        // retries the refused /bootstrap until its own --timeout).
        const [refused, [written, read], wrong] = await Promise.all([
          runBlixard(["kv", "put", "greeting", "hello", "--peer", peer]),
          (async () => {
            const written = await runBlixard([
              "kv",
              "put",
              "greeting",
              "hello",
              "--peer",
              peer,
              ...withSecret,
            ]);
            const read = await runBlixard([
              "kv",
              "get",
              "greeting",
              "--peer",
              nodes[2]!.address,
              ...withSecret,
            ]);
            return [written, read] as const;
          })(),
          runBlixard([
            "kv",
            "get",
            "greeting",
            "--peer",
            peer,
            "--cluster-secret-file",
            wrongSecretFile,
            "--timeout",
            "3s",
          ]),
        ]);
        cliRuns.push(refused, written, read, wrong);
        assert.equal(refused.code, 1, describeRun(refused));
        assert.match(
          refused.stderr,
          /^blixard: 127\.0\.0\.1:\d+ refused this client: this cluster requires the cluster secret: pass --cluster-secret-file/,
        );
        assert.equal(refused.stderr.trim().split("\n").length, 1, describeRun(refused));
        assert.equal(written.code, 0, describeRun(written));
        assert.match(written.stdout, /^\d+\n$/);
        assert.equal(read.stdout, "hello\n", describeRun(read));
        assert.equal(wrong.code, 1, describeRun(wrong));
        assert.match(
          wrong.stderr,
          new RegExp(`^blixard: peer 127\\.0\\.0\\.1:\\d+: ${SIGNATURE_OR_DEADLINE}`),
          describeRun(wrong),
        );
      },
    );

    await t.step(
      "a stranger's key may ping, and every other method is refused as unauthenticated",
      async () => {
        const stranger = await RawRpc.connect(nodes[0]!);
        try {
          assert.equal((await stranger.call(PING_RPC, {})).nodeId, 1);
          const calls: [string, () => Promise<unknown>][] = [
            ["cluster.status", () => stranger.call(STATUS_RPC, {})],
            ["kv.get", () => stranger.call(GET_RPC, { key: encoder.encode("greeting") })],
            ["kv.put", () =>
              stranger.call(PUT_RPC, {
                key: encoder.encode("greeting"),
                value: encoder.encode("forged"),
                request: { clientId: "stranger", sequence: 1 },
              })],
            ["cluster.remove", () => stranger.call(REMOVE_RPC, { nodeId: 3, force: true })],
          ];
          for (const [method, call] of calls) {
            await assert.rejects(
              call(),
              (error) => error instanceof RpcError && error.code === UNAUTHENTICATED,
              method,
            );
          }
        } finally {
          await stranger.close();
        }
        assert.deepEqual((await statusOf(nodes[0]!)).members.map((m) => m.node_id), [1, 2, 3]);
      },
    );

    await t.step(
      "the founder, removed while down, proves the secret to ask whether it still is a member, and stops",
      async () => {
        // The founder never authenticated anywhere (it joined nobody), and once removed it is no
        // member to the others: only proving the secret lets it ask them.
        const founder = nodes[0]!;
        await founder.kill();
        await agreedLeader([nodes[1]!, nodes[2]!]);
        const run = await runBlixard([
          "cluster",
          "remove",
          "--id",
          "1",
          "--peer",
          nodes[1]!.address,
          ...withSecret,
        ]);
        cliRuns.push(run);
        assert.equal(run.code, 0, describeRun(run));
        const restarted = await group.start({
          id: 1,
          bindPort: founder.bindPort,
          args: withSecret,
        });
        assert.equal((await restarted.waitForExit()).code, 0, restarted.stderr);
        assert.ok(logLine(restarted, /this node was removed from the cluster/), restarted.stderr);
      },
    );

    await t.step("the secret appears in no log line and no command output", () => {
      const texts = [
        ...group.nodes.flatMap((node) => [node.stderr, node.stdout]),
        ...cliRuns.flatMap((run) => [run.stdout, run.stderr]),
      ];
      assert.ok(texts.some((text) => text.includes("cluster secret")), "the logs were captured");
      for (const text of texts) {
        assert.ok(!text.includes(SECRET_TEXT), "the secret leaked");
        assert.ok(!text.includes(WRONG_SECRET_TEXT), "the wrong secret leaked");
      }
    });
  } finally {
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
});

/**
 * A man in the middle: a stranger's own single-node cluster (node id 1, no secret), and an
 * HTTP server that answers `/bootstrap` with `victim`'s signed answer whose P2P id and
 * addresses were swapped for the stranger's.
 */
async function startForgedBootstrap(group: NodeGroup, victim: NodeProcess) {
  const stranger = await group.start({ id: 1, dataDir: Deno.makeTempDirSync() });
  await waitForVoters(stranger, 1);
  const genuine = await victim.getJson("/bootstrap");
  const strangers = await stranger.getJson("/bootstrap");
  const forged = {
    ...genuine,
    p2p_node_id: strangers.p2p_node_id,
    p2p_addresses: strangers.p2p_addresses,
  };
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    requests++;
    return Response.json(forged);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/bootstrap`,
    stranger,
    requests: () => requests,
    close: async () => {
      await server.shutdown();
      await stranger.kill();
      await Deno.remove(stranger.dataDir, { recursive: true });
    },
  };
}
