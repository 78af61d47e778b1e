/**
 * End-to-end tests of the cluster over P2P (issue: formation through /bootstrap, joins
 * through followers, concurrent joins, leader failure, restarts from the node's own state).
 * Real child nodes on 127.0.0.1 with OS-chosen ports and temporary data dirs.
 */

import assert from "node:assert/strict";
import { NodeGroup } from "../helpers/node_process.ts";
import { freeBindPort } from "../helpers/ports.ts";
import {
  agreedLeader,
  CLUSTER_WAIT_MS,
  formCluster,
  statusOf,
  waitForVoters,
} from "../helpers/cluster.ts";

Deno.test("three nodes form one cluster through /bootstrap, node 3 joining through a follower", async () => {
  const group = new NodeGroup();
  try {
    const nodes = await formCluster(group, 3);
    const statuses = await Promise.all(nodes.map(statusOf));
    const clusterIds = new Set(statuses.map((status) => status.cluster_id));
    assert.equal(clusterIds.size, 1, "one cluster id everywhere");
    assert.ok(statuses[0]!.cluster_id !== null);
    for (const status of statuses) {
      assert.deepEqual(status.members.map((member) => [member.node_id, member.role]), [
        [1, "voter"],
        [2, "voter"],
        [
          3,
          "voter",
        ],
      ]);
    }
    // Every member's advertised P2P id is the one its own /bootstrap reports.
    for (const node of nodes) {
      const bootstrap = await node.getJson("/bootstrap");
      const record = statuses[0]!.members.find((member) => member.node_id === node.id)!;
      assert.equal(record.p2p_node_id, bootstrap.p2p_node_id);
      assert.deepEqual(record.p2p_addresses, [node.address]);
      assert.equal(bootstrap.cluster_id, statuses[0]!.cluster_id);
    }
    assert.equal(statuses[2]!.join?.phase, "voter");
    // Node 2 was not the leader when node 3 joined through it: the join was forwarded.
    assert.equal(statuses[1]!.leader_id, 1);
  } finally {
    await group.cleanup();
  }
});

Deno.test("nodes that join at the same time all become voters, one membership change at a time", async () => {
  const group = new NodeGroup();
  try {
    const [founder] = await formCluster(group, 1);
    // The joins queue behind each other (busy, retry after): on a loaded machine the last
    // can take longer than the default --join-timeout, which is not what this test is about.
    const waitMs = 4 * CLUSTER_WAIT_MS;
    const joiners = await Promise.all(
      [2, 3, 4].map((id) =>
        group.start({
          id,
          peers: [founder!.address],
          args: ["--join-timeout", `${waitMs / 1000}s`],
        })
      ),
    );
    for (const node of [founder!, ...joiners]) {
      await waitForVoters(node, 4, { timeoutMs: waitMs });
    }
    const status = await statusOf(founder!);
    assert.deepEqual(status.members.map((member) => member.node_id), [1, 2, 3, 4]);
    for (const joiner of joiners) assert.doesNotMatch(joiner.stderr, /join failed/);
  } finally {
    await group.cleanup();
  }
});

Deno.test("after kill -9 of the leader a new leader is elected and a 4th node can still join", async () => {
  const group = new NodeGroup();
  try {
    const nodes = await formCluster(group, 3);
    const leader = await agreedLeader(nodes);
    const termBefore = (await statusOf(leader)).term;
    await leader.kill();
    const survivors = nodes.filter((node) => node !== leader);
    const newLeader = await agreedLeader(survivors);
    assert.notEqual(newLeader.id, leader.id);
    assert.ok((await statusOf(newLeader)).term > termBefore);
    const fourth = await group.start({ id: 4, peers: [survivors[0]!.address] });
    const status = await waitForVoters(fourth, 4);
    assert.equal(status.leader_id, newLeader.id);
  } finally {
    await group.cleanup();
  }
});

Deno.test("a follower restarted with every --peers entry dead rejoins from its own state, same ids", async () => {
  const group = new NodeGroup();
  try {
    const nodes = await formCluster(group, 3);
    const follower = nodes[2]!; // joined through node 2
    const before = await statusOf(follower);
    const p2pIdBefore = (await follower.getJson("/bootstrap")).p2p_node_id;
    assert.equal((await follower.stop()).code, 0);
    const deadPeer = `127.0.0.1:${await freeBindPort()}`;
    const restarted = await group.start({ id: 3, bindPort: follower.bindPort, peers: [deadPeer] });
    const after = await waitForVoters(restarted, 3);
    assert.equal(after.cluster_id, before.cluster_id);
    assert.equal(after.join, null, "a restart does not join");
    assert.equal((await restarted.getJson("/bootstrap")).p2p_node_id, p2pIdBefore);
    assert.match(restarted.stderr, /\(restart\)/);
    assert.doesNotMatch(restarted.stderr, /bootstrap: peer/, "no bootstrap fetch on restart");
  } finally {
    await group.cleanup();
  }
});

Deno.test("a node restarted with another --bind announces its new address and stays a member", async () => {
  const group = new NodeGroup();
  try {
    const nodes = await formCluster(group, 3);
    const moved = nodes[1]!;
    assert.equal((await moved.stop()).code, 0);
    const newPort = await freeBindPort();
    const restarted = await group.start({ id: 2, bindPort: newPort });
    await nodes[0]!.waitForStatus("node 2's new address replicated", (status) => {
      const members =
        (status as { members: { node_id: number; p2p_addresses: string[] }[] }).members;
      return members.find((member) => member.node_id === 2)?.p2p_addresses[0] ===
        `127.0.0.1:${newPort}`;
    }, { timeoutMs: 30_000 });
    await waitForVoters(restarted, 3);
    await agreedLeader([nodes[0]!, restarted, nodes[2]!]);
  } finally {
    await group.cleanup();
  }
});

Deno.test("a node whose id is taken by another key is refused with one clear line and exit 1", async () => {
  const group = new NodeGroup();
  try {
    const nodes = await formCluster(group, 2);
    // A fresh data dir means a fresh key: node id 2 with another P2P id.
    const impostor = await group.start({
      id: 2,
      dataDir: Deno.makeTempDirSync(),
      peers: [nodes[0]!.address],
    });
    try {
      const status = await impostor.exited;
      assert.equal(status.code, 1);
      assert.match(impostor.stderr, /node id 2 is taken by a member with P2P id [0-9a-f]{64}/);
      const members = (await statusOf(nodes[0]!)).members;
      assert.deepEqual(members.map((member) => member.node_id), [1, 2], "membership unchanged");
    } finally {
      await Deno.remove(impostor.dataDir, { recursive: true });
    }
  } finally {
    await group.cleanup();
  }
});

Deno.test("a node that starts joining as the leader is killed -9 becomes a voter under the new leader", async () => {
  const group = new NodeGroup();
  try {
    const nodes = await formCluster(group, 3);
    const leader = await agreedLeader(nodes);
    const survivors = nodes.filter((node) => node !== leader);
    // The joiner starts, then the leader dies while the joiner looks for its seed or asks
    // to join: the join meets "no leader" and retries until the survivors elect one.
    const joiner = await group.start({ id: 4, peers: survivors.map((node) => node.address) });
    await leader.kill();
    const status = await waitForVoters(joiner, 4);
    assert.notEqual(status.leader_id, leader.id);
    assert.deepEqual(status.members.map((member) => member.node_id), [1, 2, 3, 4]);
    assert.doesNotMatch(joiner.stderr, /join failed/);
  } finally {
    await group.cleanup();
  }
});
