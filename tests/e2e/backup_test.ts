/**
 * Backup, restore and recovery from a lost quorum (issue 15), with real processes:
 * `blixard cluster backup` during a write load, `blixard node --restore`, refused backup
 * files, and `--force-new-cluster` after two of three nodes are gone for good.
 */

import assert from "node:assert/strict";
import { BACKUP_MAGIC } from "../../src/backup/backup_file.ts";
import { BlixardClient } from "../../src/client/client.ts";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { CLUSTER_WAIT_MS, formCluster, statusOf, waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { OTHER_SECRET_TEXT, SECRET_TEXT, secretOf, writeSecretFile } from "../helpers/secrets.ts";

const decoder = new TextDecoder();

/** A write the load made: its value and the index it was acknowledged at. */
interface Acknowledged {
  value: string;
  index: number;
  /** Acknowledged before the backup command started. */
  beforeBackup: boolean;
}

/** Puts `prefix<n>` keys with 512-byte values, `concurrency` at a time, until stopped. */
function startLoad(client: BlixardClient, prefix: string, concurrency: number) {
  const acknowledged = new Map<string, Acknowledged>();
  const state = { stopping: false, next: 0, backupStarted: false };
  const loop = async () => {
    // Bounded: the test stops the load long before this.
    while (!state.stopping && state.next < 20_000) {
      const key = `${prefix}${String(state.next++).padStart(6, "0")}`;
      const value = `${key}:${crypto.randomUUID()}:`.padEnd(512, "v");
      const { index } = await client.put(key, value);
      acknowledged.set(key, { value, index, beforeBackup: !state.backupStarted });
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    acknowledged,
    markBackupStarted: () => state.backupStarted = true,
    stop: async () => {
      state.stopping = true;
      await Promise.all(loops);
    },
  };
}

/** Runs `blixard node --restore FILE` into `dataDir` and expects it to refuse. */
async function refusedRestore(group: NodeGroup, file: string, dataDir: string): Promise<string> {
  const node = await group.start({ id: 9, dataDir, args: ["--restore", file] });
  const status = await node.waitForExit({ timeoutMs: CLUSTER_WAIT_MS });
  assert.notEqual(status.code, 0, node.stderr);
  const lines = node.stderr.trim().split("\n");
  return lines.at(-1)!;
}

// The cluster has a secret: the backup needs it, and the restored cluster and its joiner use it.
Deno.test("a backup taken during writes restores every write acknowledged before it, in a new cluster", async (t) => {
  const group = new NodeGroup();
  const scratch = Deno.makeTempDirSync({ prefix: "blixard-backup-test-" });
  const secretDir = Deno.makeTempDirSync({ prefix: "blixard-backup-secret-" });
  const withSecret = ["--cluster-secret-file", writeSecretFile(secretDir, "secret", SECRET_TEXT)];
  const clusterSecret = await secretOf(SECRET_TEXT);
  let client: BlixardClient | null = null;
  let restoredClient: BlixardClient | null = null;
  try {
    const source = await group.start({ id: 1, args: withSecret });
    await waitForVoters(source, 1);
    client = await BlixardClient.connect(source.address, { clusterSecret });
    const load = startLoad(client, "load-", 8);
    while (load.acknowledged.size < 300) await new Promise((r) => setTimeout(r, 20));
    const file = `${scratch}/state.bak`;
    const backupTo = (path: string, secretArgs: string[]) =>
      runBlixard(["cluster", "backup", path, "--peer", source.address, ...secretArgs]);

    await t.step(
      "without the cluster secret, or with another one, no backup is written",
      async () => {
        const other = [
          "--cluster-secret-file",
          writeSecretFile(secretDir, "other", OTHER_SECRET_TEXT),
        ];
        // Two commands of their own, so they run at once.
        const attempts = [["none.bak", []], ["other.bak", other]] as const;
        const runs = await Promise.all(
          attempts.map(([name, secretArgs]) => backupTo(`${scratch}/${name}`, [...secretArgs])),
        );
        for (const refused of runs) {
          assert.equal(refused.code, 1, describeRun(refused));
          assert.equal(refused.stderr.trim().split("\n").length, 1, describeRun(refused));
          assert.match(refused.stderr, /secret/, describeRun(refused));
        }
        assert.deepEqual([...Deno.readDirSync(scratch)], [], "no file, not even a temporary one");
      },
    );

    load.markBackupStarted();
    // The smallest chunk size: the state (at least 300 × 512 B) is many chunks, as a large
    // state would be with the default.
    const backup = await backupTo(file, [...withSecret, "--chunk-bytes", "1024"]);
    await load.stop();
    assert.equal(backup.code, 0, describeRun(backup));
    const printed = /at index (\d+) \(term (\d+)\).* in (\d+) chunks/.exec(backup.stdout);
    assert.ok(printed !== null, backup.stdout);
    const [backupIndex, chunks] = [Number(printed[1]), Number(printed[3])];
    assert.ok(chunks >= 100, `${chunks} chunks`);
    assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
    assert.deepEqual(
      [...Deno.readDirSync(scratch)].map((entry) => entry.name),
      ["state.bak"],
      "no temporary file is left",
    );

    const restored = await group.start({ id: 5, args: ["--restore", file, ...withSecret] });
    await t.step(
      "the restored node serves every write acknowledged before the backup",
      async () => {
        const status = await waitForVoters(restored, 1);
        const sourceStatus = await statusOf(source);
        assert.notEqual(status.cluster_id, sourceStatus.cluster_id, "a new cluster id");
        assert.deepEqual(status.members.map((member) => member.node_id), [5]);
        restoredClient = await BlixardClient.connect(restored.address, { clusterSecret });
        const stored = new Map(
          (await restoredClient.list("load-")).map((pair) => [
            decoder.decode(pair.key),
            decoder.decode(pair.value),
          ]),
        );
        const missing: string[] = [];
        let checked = 0;
        for (const [key, write] of load.acknowledged) {
          if (write.beforeBackup) assert.ok(write.index <= backupIndex, `${key} at ${write.index}`);
          if (write.index > backupIndex) continue;
          checked += 1;
          if (stored.get(key) !== write.value) missing.push(key);
        }
        assert.ok(checked >= 300, `${checked} writes checked`);
        assert.deepEqual(missing, []);
        await restoredClient.put("after-restore", "yes");
      },
    );

    await t.step("another node joins the restored cluster as usual", async () => {
      const joiner = await group.start({ id: 6, peers: [restored.address], args: withSecret });
      const status = await waitForVoters(joiner, 2);
      assert.equal(status.cluster_id, (await statusOf(restored)).cluster_id);
    });

    await t.step("a restore into a data dir that is not empty is refused", async () => {
      const line = await refusedRestore(group, file, restored.dataDir);
      assert.match(line, /the directory is not empty .*restore into an empty or new directory/);
    });

    await t.step(
      "a corrupt, truncated, other-version or foreign file is refused, nothing written",
      async () => {
        const bytes = Deno.readFileSync(file);
        const flipped = bytes.slice();
        flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
        const otherVersion = bytes.slice();
        otherVersion[BACKUP_MAGIC.length + 1] = 2;
        const cases: [string, Uint8Array, RegExp][] = [
          ["flipped.bak", flipped, /is (damaged|truncated)/],
          ["truncated.bak", bytes.subarray(0, bytes.length - 100), /is truncated: it ends inside/],
          ["v2.bak", otherVersion, /is a backup of format version 2; this build reads version 1/],
          ["foreign.bak", new TextEncoder().encode("key,value\n"), /is not a Blixard backup/],
        ];
        // Each case has its own file and data dir: the four nodes run at once.
        await Promise.all(cases.map(async ([name, content, expected]) => {
          Deno.writeFileSync(`${scratch}/${name}`, content);
          const dataDir = `${scratch}/data-${name}`;
          const line = await refusedRestore(group, `${scratch}/${name}`, dataDir);
          assert.match(line, expected, name);
          assert.match(line, new RegExp(`--restore ${scratch}/${name}`));
          assert.throws(() => Deno.statSync(dataDir), Deno.errors.NotFound, "nothing written");
        }));
      },
    );
  } finally {
    await client?.close();
    await (restoredClient as BlixardClient | null)?.close();
    await group.cleanup();
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    await Deno.remove(secretDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("--force-new-cluster makes the survivor of a lost quorum serve; fresh nodes join; old members stop", async (t) => {
  const group = new NodeGroup();
  let client: BlixardClient | null = null;
  try {
    const nodes = await formCluster(group, 3);
    const [survivor, lost2, lost3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    client = await BlixardClient.connect(survivor.address);
    // Twenty writes at once, each acknowledged before the two followers are killed.
    const connected = client;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => connected.put(`before-${i}`, `value-${i}`)),
    );
    await client.close();
    client = null;
    await Promise.all([lost2.kill(), lost3.kill()]);

    await t.step("without a leader, /status still shows the applied index", async () => {
      const status = await survivor.waitForStatus(
        "no leader",
        (status) => status.leader_id === null,
        { timeoutMs: CLUSTER_WAIT_MS },
      );
      assert.ok((status.applied_index as number) >= 20);
    });
    const fromIndex = (await statusOf(survivor)).applied_index;
    await survivor.kill();

    const forced = await group.start({
      id: survivor.id,
      bindPort: survivor.bindPort,
      args: ["--force-new-cluster"],
    });
    await t.step("the forced node leads alone, says it was forced, and serves writes", async () => {
      const status = await waitForVoters(forced, 1);
      assert.ok(status.forced !== undefined, JSON.stringify(status));
      assert.ok(status.forced.from_index >= fromIndex);
      assert.deepEqual(status.forced.removed.map((member) => member.node_id), [2, 3]);
      assert.match(forced.stderr, /FORCED A NEW CLUSTER/);
      client = await BlixardClient.connect(forced.address);
      await client.put("after-force", "yes");
      const connected = client;
      const values = await Promise.all(
        Array.from({ length: 20 }, (_, i) => connected.get(`before-${i}`)),
      );
      values.forEach((value, i) => assert.equal(decoder.decode(value!), `value-${i}`));
    });

    await t.step("two fresh nodes join, and all three are voters", async () => {
      const fresh = [
        await group.start({ id: 4, peers: [forced.address] }),
        await group.start({ id: 5, peers: [forced.address] }),
      ];
      for (const node of [forced, ...fresh]) await waitForVoters(node, 3);
    });

    await t.step("the old two, restarted with their data, find out and stop", async () => {
      const old = [
        await group.start({ id: 2, bindPort: lost2.bindPort }),
        await group.start({ id: 3, bindPort: lost3.bindPort }),
      ];
      for (const node of old) {
        await node.waitForExit({ timeoutMs: CLUSTER_WAIT_MS });
        // Either way the forced node tells it: its record names the key, and the forced
        // removal revoked the key, so the status call itself is refused.
        assert.match(
          node.stderr,
          /this node was removed from the cluster: .*(forced to a new membership .* that removed this node|refuses this node's key as revoked)/,
        );
      }
      const status = await waitForVoters(forced, 3);
      assert.deepEqual(status.members.map((member) => member.node_id), [1, 4, 5]);
      assert.equal(decoder.decode((await client!.get("after-force"))!), "yes");
    });
  } finally {
    await (client as BlixardClient | null)?.close();
    await group.cleanup();
  }
});

Deno.test("--force-new-cluster on a data dir without Raft state is refused with one line", async () => {
  const group = new NodeGroup();
  try {
    const node = await group.start({ id: 1, args: ["--force-new-cluster"] });
    const status = await node.waitForExit({ timeoutMs: CLUSTER_WAIT_MS });
    assert.equal(status.code, 1);
    const last = node.stderr.trim().split("\n").at(-1)!;
    assert.match(
      last,
      /--force-new-cluster: .* holds no Raft state, so there is nothing to recover/,
    );
    assert.deepEqual([...Deno.readDirSync(node.dataDir)].map((entry) => entry.name).sort(), [
      "LOCK",
      "identity.key",
    ]);
  } finally {
    await group.cleanup();
  }
});
