/**
 * Fault tests of durability (issue "Operating the cluster"): a write the cluster
 * acknowledged survives kill -9 of the leader while writes are in flight, and kill -9 of
 * every node followed by a restart from the data dirs. Each acknowledged write has a key
 * and a value of its own and is read back one by one.
 */

import assert from "node:assert/strict";
import { BlixardClient } from "../../src/client/client.ts";
import { agreedLeader, CLUSTER_WAIT_MS, formCluster, waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { assertEveryWriteReadable, startWriter } from "../helpers/writer.ts";

/** Acknowledged writes before and after each fault: enough to have writes in flight at it. */
const WRITES_PER_PHASE = 40;
/**
 * How long a node restarted after kill -9, once it serves HTTP, may take to hear from the
 * leader. It takes well under a second; the bound sits below QUIC's idle timeout (30 s),
 * which is what a leader that keeps writing into its connection to the dead process would
 * cost. The process start is not counted: on a loaded machine it alone can take seconds.
 */
const RESTART_CATCH_UP_WAIT_MS = 20_000;

Deno.test("acknowledged writes survive kill -9 of the leader mid-stream and kill -9 of every node", async (t) => {
  const group = new NodeGroup();
  const clients: BlixardClient[] = [];
  try {
    const nodes = await formCluster(group, 3);
    const leader = await agreedLeader(nodes);
    const survivors = nodes.filter((node) => node !== leader);
    const client = await BlixardClient.connect(survivors[0]!.address);
    clients.push(client);
    const acknowledged = new Map<string, string>();

    await t.step(
      "a writer that keeps writing while the leader is killed loses no acknowledged write",
      async () => {
        const writer = startWriter(client, { prefix: "stream/", concurrency: 4 });
        try {
          await writer.waitForMore(WRITES_PER_PHASE);
          await leader.kill();
          await writer.waitForMore(WRITES_PER_PHASE);
        } finally {
          await writer.stop();
        }
        for (const [key, value] of writer.acknowledged) acknowledged.set(key, value);
        // Writes carry sessions and the client retries them at the new leader: none should fail.
        assert.equal(writer.failures.length, 0, writer.describeFailures());
        await agreedLeader(survivors);
        await assertEveryWriteReadable(client, acknowledged);
      },
    );

    await t.step(
      "every acknowledged write is there after kill -9 of all three nodes and a restart",
      async () => {
        const restartedLeader = await restart(group, leader);
        await restartedLeader.waitForHealthy({ timeoutMs: CLUSTER_WAIT_MS });
        await waitForVoters(restartedLeader, 3, { timeoutMs: RESTART_CATCH_UP_WAIT_MS });
        const writer = startWriter(client, { prefix: "before-crash/" });
        await writer.waitForMore(WRITES_PER_PHASE).finally(() => writer.stop());
        assert.equal(writer.failures.length, 0, writer.describeFailures());
        for (const [key, value] of writer.acknowledged) acknowledged.set(key, value);

        const running = [restartedLeader, ...survivors];
        await Promise.all(running.map((node) => node.kill()));
        const restarted = await Promise.all(running.map((node) => restart(group, node)));
        for (const node of restarted) await waitForVoters(node, 3);
        await agreedLeader(restarted);
        const fresh = await BlixardClient.connect(restarted[0]!.address);
        clients.push(fresh);
        await assertEveryWriteReadable(fresh, acknowledged);
      },
    );
  } finally {
    for (const client of clients) await client.close();
    await group.cleanup();
  }
});

/** Starts `node` again with its data dir and bind port. */
async function restart(group: NodeGroup, node: NodeProcess): Promise<NodeProcess> {
  return await group.start({ id: node.id, bindPort: node.bindPort });
}
