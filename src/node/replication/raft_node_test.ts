import assert from "node:assert/strict";
import { encodeCommand } from "../../state_machine/commands.ts";
import { ClusterError } from "./cluster_error.ts";
import { eventually, within } from "../../transport/testing.ts";
import { FAST_RAFT_TIMING, InProcessCluster } from "../testing/in_process_cluster.ts";

/** One heartbeat interval of the test clusters. */
const HEARTBEAT_MS = FAST_RAFT_TIMING.heartbeatTicks * FAST_RAFT_TIMING.tickMs;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function put(key: string, value: string): Uint8Array {
  return encodeCommand({ type: "put", key: encoder.encode(key), value: encoder.encode(value) });
}

function isClusterError(code: string, message?: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof ClusterError && error.code === code &&
    (message === undefined || message.test(error.message));
}

Deno.test("RaftNode.propose() on the leader resolves with the entry's apply result once applied", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    const result = await leader.raft.propose(put("color", "blue"));
    assert.equal(result.type, "put");
    assert.equal(leader.stateMachine.appliedIndex() >= result.index, true);
    assert.equal(decoder.decode(leader.stateMachine.get(encoder.encode("color"))!), "blue");
    // The other nodes apply the same entry.
    for (const member of cluster.members.values()) {
      await eventually(
        `node ${member.nodeId} applied it`,
        () => member.stateMachine.appliedIndex() >= result.index,
      );
      assert.equal(decoder.decode(member.stateMachine.get(encoder.encode("color"))!), "blue");
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode.propose() on a follower rejects with not_leader naming the leader", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    const follower = cluster.other(leader.nodeId);
    await assert.rejects(
      follower.raft.propose(put("color", "red")),
      (error) =>
        isClusterError("not_leader", new RegExp(`node ${leader.nodeId} is the leader`))(error) &&
        (error as ClusterError).leaderId === leader.nodeId,
    );
    assert.equal(follower.stateMachine.get(encoder.encode("color")), null);
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode.read() on the leader and on a follower sees every write acknowledged before it", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    for (const member of cluster.members.values()) {
      const value = `written before reading at node ${member.nodeId}`;
      await leader.raft.propose(put("k", value));
      // No waiting for the follower to apply: read() itself must catch up first.
      const read = await member.raft.read(() =>
        decoder.decode(member.stateMachine.get(encoder.encode("k"))!)
      );
      assert.equal(read, value);
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode.read() on a follower that lags waits until it has applied the read index", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    const follower = cluster.other(leader.nodeId);
    await leader.raft.propose(put("k", "old"));
    await eventually(
      "the follower applied the first write",
      () => follower.stateMachine.get(encoder.encode("k")) !== null,
    );
    // The follower hears heartbeats and ReadIndex answers, but no new entries.
    const unblock = cluster.network.block((message) =>
      message.type === "AppendEntries" && message.to === follower.nodeId
    );
    await leader.raft.propose(put("k", "new"));
    const reads: string[] = [];
    const read = follower.raft.read(() =>
      reads.push(decoder.decode(follower.stateMachine.get(encoder.encode("k"))!))
    );
    await eventually(
      "the leader confirmed the read index",
      () => cluster.network.deliveredCount("ReadIndexResponse") > 0,
    );
    // Three heartbeat rounds that bring the follower no entry: it must not read meanwhile.
    cluster.clock.pause();
    await cluster.advance(3 * HEARTBEAT_MS);
    assert.deepStrictEqual(reads, [], "nothing read before the follower caught up");
    cluster.clock.resume();
    unblock();
    await within("the read", read);
    assert.deepStrictEqual(reads, ["new"]);
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode.read() on a node cut off rejects with timeout at its signal and never reads", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    for (const member of [cluster.other(leader.nodeId), leader]) {
      cluster.network.cut(member.nodeId);
      const controller = new AbortController();
      let reads = 0;
      const read = member.raft.read(() => ++reads, { signal: controller.signal });
      // Heartbeat rounds that cannot complete, well within an election timeout.
      cluster.clock.pause();
      await cluster.advance(3 * HEARTBEAT_MS);
      controller.abort();
      await assert.rejects(within("the read", read), isClusterError("timeout"));
      assert.equal(reads, 0);
      cluster.clock.resume();
      cluster.network.heal(member.nodeId);
      await cluster.leader();
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode.read() on a leader cut off never returns a value older than a later write", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const old = await cluster.leader();
    await old.raft.propose(put("k", "old"));
    cluster.network.cut(old.nodeId);
    const reads: string[] = [];
    const read = assert.rejects(
      old.raft.read(() => reads.push(decoder.decode(old.stateMachine.get(encoder.encode("k"))!))),
      isClusterError("no_leader"),
    );
    // The others elect a leader and overwrite the value; the cut-off leader must not serve it.
    const others = [...cluster.members.values()].filter((member) => member !== old);
    await eventually(
      "the others elected a new leader",
      () => others.some((member) => member.raft.softState.role === "leader"),
    );
    const next = others.find((member) => member.raft.softState.role === "leader")!;
    await next.raft.propose(put("k", "new"));
    await within("the read", read);
    assert.deepStrictEqual(reads, []);
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode.propose() rejects with timeout at its signal when no quorum can commit", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    for (const member of cluster.members.values()) {
      if (member !== leader) cluster.network.cut(member.nodeId);
    }
    const controller = new AbortController();
    const proposal = leader.raft.propose(put("k", "v"), { signal: controller.signal });
    // Replication rounds that reach nobody, well within an election timeout.
    cluster.clock.pause();
    await cluster.advance(3 * HEARTBEAT_MS);
    assert.equal(leader.raft.status().commit < leader.raft.status().lastIndex, true);
    controller.abort();
    await assert.rejects(
      within("the proposal", proposal),
      isClusterError("timeout", /may still take effect/),
    );
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode.stop() fails waiting proposals and reads with stopping, and refuses new ones", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    for (const member of cluster.members.values()) {
      if (member !== leader) cluster.network.cut(member.nodeId);
    }
    const proposal = leader.raft.propose(put("k", "v"));
    const read = leader.raft.read(() => "read");
    leader.raft.stop();
    await assert.rejects(within("the proposal", proposal), isClusterError("stopping"));
    await assert.rejects(within("the read", read), isClusterError("stopping"));
    await assert.rejects(leader.raft.propose(put("k", "w")), isClusterError("stopping"));
    await assert.rejects(leader.raft.read(() => "read"), isClusterError("stopping"));
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode compacts its log and a follower that fell behind the compaction catches up by snapshot", async () => {
  const interval = 20;
  const cluster = InProcessCluster.create({ voters: 3, snapshotIntervalEntries: interval });
  try {
    const leader = await cluster.leader();
    const lagging = cluster.other(leader.nodeId);
    cluster.network.cut(lagging.nodeId);
    // Until the leader sees the follower inactive, it holds compaction back for it.
    await eventually(
      "the leader saw the follower inactive",
      () =>
        leader.raft.status().progress.some((peer) =>
          peer.nodeId === lagging.nodeId && !peer.recentActive
        ),
    );
    for (let i = 0; i < interval * 3; i++) await leader.raft.propose(put(`key${i}`, `value${i}`));
    const firstIndex = leader.storage.firstIndex();
    assert.ok(firstIndex > lagging.storage.lastIndex() + 1, `leader's log starts at ${firstIndex}`);
    cluster.network.heal(lagging.nodeId);
    const { index } = await leader.raft.propose(put("after", "healing"));
    await eventually(
      "the follower applied the write after healing",
      () => lagging.stateMachine.appliedIndex() >= index,
    );
    assert.ok(cluster.network.deliveredCount("InstallSnapshot") >= 1);
    for (let i = 0; i < interval * 3; i++) {
      assert.equal(
        decoder.decode(lagging.stateMachine.get(encoder.encode(`key${i}`))!),
        `value${i}`,
      );
    }
    assert.equal(decoder.decode(lagging.stateMachine.get(encoder.encode("after"))!), "healing");
  } finally {
    await cluster.close();
  }
});

Deno.test("RaftNode restarted from compacted storage rebuilds its state and rejoins the cluster", async () => {
  const cluster = InProcessCluster.create({ voters: 3, snapshotIntervalEntries: 10 });
  try {
    let leader = await cluster.leader();
    let written = 0;
    for (let i = 0; i < 25; i++) {
      written = (await leader.raft.propose(put(`key${i}`, `value${i}`))).index;
    }
    const follower = cluster.other(leader.nodeId);
    await eventually(
      "the follower applied every write",
      () => follower.stateMachine.appliedIndex() >= written,
    );
    assert.ok(follower.storage.firstIndex() > 1, "the follower compacted its log");
    const restarted = cluster.restart(follower.nodeId);
    assert.equal(decoder.decode(restarted.stateMachine.get(encoder.encode("key24"))!), "value24");
    leader = await cluster.leader();
    const { index } = await leader.raft.propose(put("after", "restart"));
    await eventually(
      "the restarted node applied a new write",
      () => restarted.stateMachine.appliedIndex() >= index,
    );
    assert.equal(decoder.decode(restarted.stateMachine.get(encoder.encode("after"))!), "restart");
  } finally {
    await cluster.close();
  }
});
