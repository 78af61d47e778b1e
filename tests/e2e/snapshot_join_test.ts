/**
 * Joining a cluster whose state spans many snapshot chunks (issue 14), with real processes:
 * a small chunk size and compaction interval (test knobs) make a state of under 1 MB a
 * compacted log and a streamed snapshot of a few hundred chunks. The joiner is killed with
 * SIGKILL while it receives the snapshot, restarted, and must end a voter holding every
 * key, with a database that opens clean. In the same cluster a fifth node then joins, and
 * the leader is killed with SIGKILL while it sends: the joiner must end a voter with every
 * key, its image from the new leader.
 */

import assert from "node:assert/strict";
import { BlixardClient } from "../../src/client/client.ts";
import { SqliteStateStore } from "../../src/state_machine/sqlite_state_store.ts";
import { SqliteStorage } from "../../src/storage/sqlite_storage.ts";
import { agreedLeader, waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";

const KEYS = 1_200;
const SNAPSHOT_ENV = {
  BLIXARD_SNAPSHOT_CHUNK_BYTES: "2048",
  BLIXARD_SNAPSHOT_INTERVAL_ENTRIES: "200",
};
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function valueOf(i: number): string {
  return `value-${i}-`.padEnd(512, "x");
}

/** The stopped member's own database, opened the way a restart opens it (with quick_check). */
function expectEveryKey(node: NodeProcess): void {
  const storage = SqliteStorage.open(node.dataDir);
  try {
    const store = new SqliteStateStore(storage);
    for (let i = 0; i < KEYS; i++) {
      const value = store.get(encoder.encode(`key-${String(i).padStart(5, "0")}`));
      assert.equal(value === null ? null : decoder.decode(value), valueOf(i), `key ${i}`);
    }
    assert.equal(decoder.decode(store.get(encoder.encode("after-join"))!), "written");
    const staging = storage.database.prepare(
      "SELECT count(*) AS count FROM sqlite_schema WHERE name LIKE 'staging_%'",
    ).get() as { count: number };
    assert.equal(staging.count, 0, "no staging table is left");
  } finally {
    storage.close();
  }
}

Deno.test("a joiner killed while it receives a many-chunk snapshot restarts and ends a voter with every key, and so does a joiner whose leader is killed while it sends", async () => {
  const group = new NodeGroup();
  let client: BlixardClient | null = null;
  try {
    const nodes: NodeProcess[] = [];
    for (let id = 1; id <= 3; id++) {
      const peers = id === 1 ? [] : [nodes[0]!.address];
      nodes.push(await group.start({ id, peers, env: SNAPSHOT_ENV }));
      await waitForVoters(nodes.at(-1)!, id);
    }
    client = await BlixardClient.connect(nodes[0]!.address);
    const writer = client;
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < KEYS) {
        const i = next++;
        await writer.put(`key-${String(i).padStart(5, "0")}`, valueOf(i));
      }
    }));
    await nodes[0]!.waitForLog(/compacted the log through index/);

    const joiner = await group.start({ id: 4, peers: [nodes[0]!.address], env: SNAPSHOT_ENV });
    await joiner.waitForLog(/receiving a snapshot at index/);
    await joiner.kill();
    const restarted = await group.start({
      id: 4,
      bindPort: joiner.bindPort,
      peers: [nodes[0]!.address],
      env: SNAPSHOT_ENV,
    });
    await waitForVoters(restarted, 4);
    await restarted.waitForLog(/snapshot at index \d+ installed/);

    // The leader dies while a fifth node receives its image.
    const members = [...nodes, restarted];
    const leader = await agreedLeader(members);
    const fifth = await group.start({ id: 5, peers: [restarted.address], env: SNAPSHOT_ENV });
    await fifth.waitForLog(/receiving a snapshot at index/);
    await leader.kill();
    const survivor = members.find((node) => node !== leader)!;
    await waitForVoters(fifth, 5);
    await fifth.waitForLog(/snapshot at index \d+ installed/);
    await client.close();
    client = await BlixardClient.connect(survivor.address);
    const { index } = await client.put("after-join", "written");
    for (const joined of [restarted, fifth]) {
      await joined.waitForStatus(
        "the write after the joins applied",
        (status) => (status as { applied_index: number }).applied_index >= index,
      );
      await joined.stop();
      expectEveryKey(joined);
    }
  } finally {
    await client?.close();
    await group.cleanup();
  }
});
