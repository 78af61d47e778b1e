/**
 * The cluster secret in a running cluster (issue 9, items 2, 8, 11), with real child nodes
 * on loopback: what `/status` shows strangers, `cluster.announce` from a key that is not the
 * member it names, a rotation of the secret one node at a time, and the key of a removed
 * member that still holds the secret. Each step performs the attack and asserts it fails.
 */

import assert from "node:assert/strict";
import { ANNOUNCE_RPC, GET_RPC, PUT_RPC, STATUS_RPC } from "../../src/transport/cluster_rpcs.ts";
import { RpcError } from "../../src/transport/rpc.ts";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { RawRpc } from "../helpers/raw_rpc.ts";
import { OTHER_SECRET_TEXT, SECRET_TEXT, secretOf, writeSecretFile } from "../helpers/secrets.ts";

const encoder = new TextEncoder();

/** The secret key in `node`'s `identity.key`: what a retired machine's disk still holds. */
function identityKeyOf(node: NodeProcess): Uint8Array {
  const hex = Deno.readTextFileSync(`${node.dataDir}/identity.key`).trim();
  return Uint8Array.from({ length: 32 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

function isRpcError(code: string): (error: unknown) => boolean {
  return (error) => error instanceof RpcError && error.code === code;
}

Deno.test("with a secret, /status shows strangers no keys or addresses, announce takes only the member itself, the secret rotates without downtime, and a removed member's key is revoked at once", async (t) => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-trust-state-" });
  const secretFile = writeSecretFile(secretDir, "secret", SECRET_TEXT);
  const withSecret = ["--cluster-secret-file", secretFile];
  let secret = await secretOf(SECRET_TEXT);
  const clients: RawRpc[] = [];
  const connect = async (...args: Parameters<typeof RawRpc.connect>) => {
    const client = await RawRpc.connect(...args);
    clients.push(client);
    return client;
  };
  try {
    let founder = await group.start({ id: 1, args: withSecret });
    await waitForVoters(founder, 1);
    let member = await group.start({ id: 2, peers: [founder.address], args: withSecret });
    await waitForVoters(member, 2);
    // A third voter keeps a quorum while one node restarts, or is down and removed.
    let third = await group.start({ id: 3, peers: [founder.address], args: withSecret });
    for (const node of [founder, member, third]) await waitForVoters(node, 3);
    const memberKey = (await member.getJson("/bootstrap")).p2p_node_id as string;

    await t.step("/status and /metrics over HTTP name no member's key or address", async () => {
      const shown = await founder.getJson("/status");
      const text = JSON.stringify(shown);
      assert.ok(!text.includes(memberKey), text);
      assert.ok(!text.includes(`:${member.bindPort}`), text);
      assert.deepEqual(shown.members, [1, 2, 3].map((id) => ({ node_id: id, role: "voter" })));
      assert.equal(shown.term, undefined);
      assert.match(
        String(shown.full_status),
        /blixard cluster status --json --cluster-secret-file/,
      );
      const metrics = await (await fetch(`http://127.0.0.1:${founder.httpPort}/metrics`)).text();
      assert.match(metrics, /blixard_raft_commit_index/);
      assert.ok(!metrics.includes(memberKey), "no key in /metrics");
      const full = await runBlixard([
        "cluster",
        "status",
        "--json",
        "--peer",
        founder.address,
        ...withSecret,
      ]);
      assert.equal(full.code, 0, describeRun(full));
      assert.ok(full.stdout.includes(memberKey), "the authenticated status is whole");
    });

    await t.step(
      "cluster.announce naming another member is refused, through the leader or a follower",
      async () => {
        const forged = {
          nodeId: 2,
          p2pNodeId: memberKey,
          addresses: ["127.0.0.2:9"],
          relayUrl: null,
        };
        for (const node of [founder, member]) {
          const operator = await connect(node, { secret });
          await assert.rejects(
            operator.call(ANNOUNCE_RPC, { member: forged }),
            (error) =>
              error instanceof RpcError && error.code === "invalid" &&
              /names P2P id [0-9a-f]{64} but comes from [0-9a-f]{64}/.test(error.message),
          );
        }
        const status = await (await connect(founder, { secret })).call(STATUS_RPC, {});
        const record = status.members.find((entry) => entry.node_id === 2);
        assert.deepEqual(record?.p2p_addresses, [`127.0.0.1:${member.bindPort}`]);
      },
    );

    await t.step(
      "the secret is rotated one node at a time while the cluster keeps committing, then the old one is refused",
      async () => {
        const nextFile = writeSecretFile(secretDir, "next", OTHER_SECRET_TEXT);
        const withNext = ["--cluster-secret-file", nextFile];
        const nextSecret = await secretOf(OTHER_SECRET_TEXT);
        const kv = async (node: NodeProcess, args: string[], secretArgs: string[]) =>
          await runBlixard(["kv", ...args, "--peer", node.address, ...secretArgs]);
        const rotated: NodeProcess[] = [];
        for (const node of [third, member, founder]) {
          assert.equal((await node.stop()).code, 0);
          const rotate = await runBlixard([
            "cluster",
            "rotate-secret",
            "--data-dir",
            node.dataDir,
            ...withSecret,
            "--new-secret-file",
            nextFile,
          ]);
          assert.equal(rotate.code, 0, describeRun(rotate));
          const back = await group.start({ id: node.id, bindPort: node.bindPort, args: withNext });
          await waitForVoters(back, 3);
          rotated.push(back);
          const writer = await connect(back, { secret: nextSecret });
          await writer.call(PUT_RPC, {
            key: encoder.encode(`rotated-${node.id}`),
            value: encoder.encode("yes"),
            request: { clientId: `rotation-${node.id}`, sequence: 1 },
          });
        }
        [third, member, founder] = rotated as [NodeProcess, NodeProcess, NodeProcess];
        const old = await kv(founder, ["get", "rotated-1", "--timeout", "2s"], withSecret);
        assert.equal(old.code, 1, describeRun(old));
        assert.match(old.stderr, /signature does not match this side's cluster secret/);
        const read = await kv(member, ["get", "rotated-3"], withNext);
        assert.equal(read.stdout, "yes\n", describeRun(read));
        withSecret.splice(0, 2, ...withNext);
        secret = nextSecret;
      },
    );

    await t.step(
      "the removed member's key is refused at once, though it proved the secret before",
      async () => {
        assert.equal((await member.stop()).code, 0);
        // Whoever kept the retired machine's disk: its key, and the secret.
        const retired = await connect(founder, { secret, secretKey: identityKeyOf(member) });
        await retired.authenticate();
        assert.equal((await retired.call(STATUS_RPC, {})).node_id, 1);
        const removed = await runBlixard([
          "cluster",
          "remove",
          "--id",
          "2",
          "--peer",
          founder.address,
          ...withSecret,
        ]);
        assert.equal(removed.code, 0, describeRun(removed));
        // On main this write committed: the key stayed authenticated for ten minutes.
        await assert.rejects(
          retired.call(PUT_RPC, {
            key: encoder.encode("k"),
            value: encoder.encode("forged"),
            request: { clientId: "retired", sequence: 1 },
          }),
          isRpcError("revoked"),
        );
        await assert.rejects(retired.call(STATUS_RPC, {}), isRpcError("revoked"));
        await assert.rejects(retired.authenticate(), isRpcError("revoked"));
        const again = await connect(founder, { secret, secretKey: identityKeyOf(member) });
        await assert.rejects(
          again.call(GET_RPC, { key: encoder.encode("k") }),
          isRpcError("revoked"),
        );
        const read = await (await connect(founder, { secret })).call(GET_RPC, {
          key: encoder.encode("k"),
        });
        assert.equal(read.value, null, "nothing was written");
      },
    );
  } finally {
    for (const client of clients) await client.close();
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
});
