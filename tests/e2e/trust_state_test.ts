/**
 * The cluster secret and the node's files against a careless restart (issue 9, items 1, 9,
 * 10), with real child nodes on loopback: a member restarted without its secret or with
 * another, a guessable secret, and credentials open to other users. Each test performs the
 * attack and asserts that it fails. `trust_cluster_test.ts` has the running cluster's.
 */

import assert from "node:assert/strict";
import { UNAUTHENTICATED } from "../../src/auth/auth_rpcs.ts";
import { JOIN_RPC, PUT_RPC } from "../../src/transport/cluster_rpcs.ts";
import { RpcError } from "../../src/transport/rpc.ts";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { RawRpc } from "../helpers/raw_rpc.ts";
import { OTHER_SECRET_TEXT, SECRET_TEXT, writeSecretFile } from "../helpers/secrets.ts";

/** The last line of `node`'s stderr: what the operator reads when a start fails. */
function lastLine(node: NodeProcess): string {
  return node.stderr.trimEnd().split("\n").at(-1) ?? "";
}

/** Starts `options` and expects the start to fail with `code` and one line matching `line`. */
async function expectRefusedStart(
  group: NodeGroup,
  options: Parameters<NodeGroup["start"]>[0],
  expected: { code: number; line: RegExp },
): Promise<void> {
  const node = await group.start(options);
  const status = await node.waitForExit({ timeoutMs: 30_000 });
  assert.equal(status.code, expected.code, node.stderr);
  assert.match(lastLine(node), expected.line, node.stderr);
}

Deno.test("a member restarted without the cluster secret, with another, or with an empty one refuses to start", async () => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-trust-state-" });
  try {
    const secretFile = writeSecretFile(secretDir, "secret", SECRET_TEXT);
    const otherFile = writeSecretFile(secretDir, "other", OTHER_SECRET_TEXT);
    const emptyFile = `${secretDir}/empty`;
    Deno.writeTextFileSync(emptyFile, "", { mode: 0o600 });
    const withSecret = ["--cluster-secret-file", secretFile];
    const founder = await group.start({ id: 1, args: withSecret });
    await waitForVoters(founder, 1);
    const member = await group.start({ id: 2, peers: [founder.address], args: withSecret });
    await waitForVoters(member, 2);
    const fingerprint = Deno.readTextFileSync(`${member.dataDir}/cluster-secret.fingerprint`);
    assert.match(fingerprint, /^[0-9a-f]{64}\n$/);
    assert.ok(!fingerprint.includes(SECRET_TEXT), "the data dir holds no secret");
    assert.equal((await member.stop()).code, 0);

    const restart = { id: 2, bindPort: member.bindPort };
    const dataDir = member.dataDir.replaceAll(".", "\\.");
    // `BLIXARD_CLUSTER_SECRET="$(cat /missing)"`: on main this started a node without a gate.
    await expectRefusedStart(group, { ...restart, env: { BLIXARD_CLUSTER_SECRET: "" } }, {
      code: 2,
      line: /^blixard: BLIXARD_CLUSTER_SECRET is set but empty: set it to the cluster secret/,
    });
    await expectRefusedStart(group, { ...restart, args: ["--cluster-secret-file", emptyFile] }, {
      code: 2,
      line: /^blixard: --cluster-secret-file \S+\/empty: the file is empty/,
    });
    await expectRefusedStart(group, restart, {
      code: 1,
      line: new RegExp(
        `^blixard: data dir ${dataDir} belongs to a cluster with a secret \\(fingerprint [0-9a-f]{12}…\\) ` +
          "and this node has none: start it with the cluster's --cluster-secret-file",
      ),
    });
    await expectRefusedStart(group, { ...restart, args: ["--cluster-secret-file", otherFile] }, {
      code: 1,
      line: new RegExp(
        `^blixard: data dir ${dataDir} belongs to a cluster whose secret has fingerprint [0-9a-f]{12}…, ` +
          "not this secret's [0-9a-f]{12}…",
      ),
    });

    const back = await group.start({ ...restart, args: withSecret });
    await waitForVoters(back, 2);
    // Through the follower, too, a stranger's write and join are refused before any forward.
    const stranger = await RawRpc.connect(back);
    try {
      const strangerKey = "f".repeat(64);
      for (
        const call of [
          () =>
            stranger.call(PUT_RPC, {
              key: new Uint8Array([1]),
              value: new Uint8Array([2]),
              request: { clientId: "stranger", sequence: 1 },
            }),
          () =>
            stranger.call(JOIN_RPC, {
              member: { nodeId: 9, p2pNodeId: strangerKey, addresses: [], relayUrl: null },
            }),
        ]
      ) {
        await assert.rejects(
          call(),
          (error) => error instanceof RpcError && error.code === UNAUTHENTICATED,
        );
      }
    } finally {
      await stranger.close();
    }
    const texts = group.nodes.flatMap((node) => [node.stderr, node.stdout]);
    for (const text of texts) assert.ok(!text.includes(SECRET_TEXT), "the secret leaked");
  } finally {
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
});

Deno.test("a guessable cluster secret is refused at start, and cluster new-secret writes a 0600 one once", async () => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-trust-state-" });
  try {
    // 35 bytes of text: accepted before, although /bootstrap lets anyone test guesses offline.
    const guessable = writeSecretFile(
      secretDir,
      "guessable",
      "e2e cluster secret 7f3a9c1d5b2e8f4a",
    );
    await expectRefusedStart(group, { id: 1, args: ["--cluster-secret-file", guessable] }, {
      code: 1,
      line: new RegExp(
        `^blixard: --cluster-secret-file ${guessable}: the file is not a cluster secret ` +
          "\\(35 characters\\): it must hold 32 random bytes written as 64 hex digits or 44 base64 characters",
      ),
    });
    assert.deepEqual(
      Array.from(Deno.readDirSync(group.dataDirFor(1))),
      [],
      "refused before anything is written",
    );

    const fresh = `${secretDir}/fresh`;
    const made = await runBlixard(["cluster", "new-secret", fresh]);
    assert.equal(made.code, 0, describeRun(made));
    assert.equal(Deno.statSync(fresh).mode! & 0o777, 0o600);
    const text = Deno.readTextFileSync(fresh);
    const again = await runBlixard(["cluster", "new-secret", fresh]);
    assert.equal(again.code, 1, describeRun(again));
    assert.match(again.stderr, /the file exists \(it may be a cluster's secret\)/);
    assert.equal(Deno.readTextFileSync(fresh), text, "never overwritten");

    const node = await group.start({ id: 2, args: ["--cluster-secret-file", fresh] });
    await waitForVoters(node, 1);
  } finally {
    await group.cleanup();
    await Deno.remove(secretDir, { recursive: true });
  }
});

Deno.test("identity.key or a data dir open to others is refused with the chmod to run; blixard.db is made 0600", async () => {
  const group = new NodeGroup();
  try {
    const first = await group.start({ id: 1 });
    await waitForVoters(first, 1);
    assert.equal((await first.stop()).code, 0);
    const dataDir = first.dataDir;
    const keyPath = `${dataDir}/identity.key`;
    const databasePath = `${dataDir}/blixard.db`;
    const restart = { id: 1, bindPort: first.bindPort };

    // On main identity.key only drew a warning, though it is the node's Raft credential.
    const refusals: [string, number, string][] = [
      [
        keyPath,
        0o644,
        `identity key ${keyPath} is accessible to group or others \\(mode 0644\\): run chmod 600`,
      ],
      [
        dataDir,
        0o777,
        `data dir ${dataDir} is writable by group or others \\(mode 0777\\): run chmod 700`,
      ],
    ];
    for (const [path, mode, message] of refusals) {
      const before = Deno.statSync(path).mode! & 0o777;
      Deno.chmodSync(path, mode);
      await expectRefusedStart(group, restart, {
        code: 1,
        line: new RegExp(`^blixard: ${message} ${path}$`),
      });
      Deno.chmodSync(path, before);
    }

    Deno.chmodSync(dataDir, 0o755);
    Deno.chmodSync(databasePath, 0o644);
    const back = await group.start(restart);
    await waitForVoters(back, 1);
    assert.equal(Deno.statSync(databasePath).mode! & 0o777, 0o600);
    assert.equal(Deno.statSync(dataDir).mode! & 0o777, 0o700);
    assert.match(back.stderr, /blixard\.db was accessible to group or others \(mode 0644\)/);
  } finally {
    await group.cleanup();
  }
});
