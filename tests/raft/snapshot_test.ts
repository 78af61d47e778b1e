import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { SNAPSHOT_RETRY_ELECTION_TIMEOUTS } from "../../src/raft/raft_core.ts";
import type { NodeId } from "../../src/raft/types.ts";
import { TestNetwork } from "./network.ts";

const context = new Uint8Array();

function proposeMany(
  network: TestNetwork,
  leader: NodeId,
  prefix: string,
  count: number,
): string[] {
  const commands: string[] = [];
  for (let i = 0; i < count; i += 1) {
    ok(network.propose(leader, `${prefix} ${i}`).ok);
    commands.push(`${prefix} ${i}`);
  }
  return commands;
}

Deno.test("a follower behind the leader's compacted log is sent the snapshot and catches up", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  network.crash(follower);
  const before = proposeMany(network, leader, "before", 10);
  network.tick(2);
  const snapshot = network.compact(leader);
  ok(network.node(leader).storage.firstIndex() > network.node(follower).storage.lastIndex() + 1);
  network.restart(follower);
  network.tick(3);
  const installed = network.node(follower).installedSnapshots;
  deepStrictEqual(installed.map((s) => s.metadata.index), [snapshot.metadata.index]);
  const after = proposeMany(network, leader, "after", 3);
  network.tick(2);
  deepStrictEqual(network.node(follower).commands, [...before, ...after]);
  deepStrictEqual(network.node(follower).raft.status().confState, {
    voters: [1, 2, 3],
    learners: [],
  });
  strictEqual(network.node(follower).storage.firstIndex(), snapshot.metadata.index + 1);
});

Deno.test("a node joining after compaction learns its membership from the snapshot", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const before = proposeMany(network, leader, "before", 5);
  network.addEmptyNode(4);
  ok(network.node(leader).raft.proposeMembership({ type: "addLearner", nodeId: 4, context }).ok);
  // Node 4 is unreachable until the leader has compacted past the whole log it would need.
  network.isolate(4);
  network.stabilize();
  network.tick(2);
  network.compact(leader);
  network.heal();
  network.tick(3);
  deepStrictEqual(network.node(4).installedSnapshots.length, 1);
  deepStrictEqual(network.node(4).raft.status().confState, { voters: [1, 2, 3], learners: [4] });
  deepStrictEqual(network.node(4).commands, before);
  ok(network.node(leader).raft.proposeMembership({ type: "promoteLearner", nodeId: 4 }).ok);
  network.tick(2);
  deepStrictEqual(network.node(4).raft.status().confState, { voters: [1, 2, 3, 4], learners: [] });
});

Deno.test("a snapshot that fails to arrive is reported and sent again", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  network.crash(follower);
  const before = proposeMany(network, leader, "before", 4);
  network.tick(2);
  network.compact(leader);
  network.restart(follower);
  let lost = 0;
  network.drop((m) => m.type === "InstallSnapshot" && lost++ === 0);
  network.tick(5);
  ok(lost >= 2, "the first snapshot was dropped and a second one sent");
  deepStrictEqual(network.node(follower).commands, before);
});

Deno.test("a snapshot lost with no outcome reported is sent again after SNAPSHOT_RETRY_ELECTION_TIMEOUTS", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  network.reportSnapshots = false;
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  network.crash(follower);
  const before = proposeMany(network, leader, "before", 4);
  network.tick(2);
  network.compact(leader);
  network.restart(follower);
  let sent = 0;
  network.drop((m) => m.type === "InstallSnapshot" && sent++ === 0);
  network.tick(10 * (SNAPSHOT_RETRY_ELECTION_TIMEOUTS - 1));
  deepStrictEqual([sent, network.node(follower).commands], [1, []], "the leader still waits");
  network.tick(10 + 2);
  deepStrictEqual([sent, network.node(follower).commands], [2, before]);
});

Deno.test("the core keeps replicating, electing and restarting after log compaction everywhere", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const first = proposeMany(network, leader, "first", 5);
  network.tick(2);
  for (const id of [1, 2, 3]) network.compact(id);
  const second = proposeMany(network, leader, "second", 3);
  network.crash(leader);
  network.restart(leader);
  const newLeader = network.electLeader();
  const third = proposeMany(network, newLeader, "third", 2);
  network.tick(3);
  for (const node of network.nodes.values()) {
    deepStrictEqual(node.commands, [...first, ...second, ...third]);
  }
});

Deno.test("a follower whose log already holds the snapshot's last entry only advances its commit index", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  proposeMany(network, leader, "x", 3);
  // The follower receives new entries but no message that would tell it they are committed.
  network.drop((m) =>
    m.to === follower &&
    (m.type === "Heartbeat" || (m.type === "AppendEntries" && m.entries.length === 0))
  );
  proposeMany(network, leader, "y", 1);
  network.heal();
  const follow = network.node(follower);
  const snapshot = network.node(leader).takeSnapshot();
  deepStrictEqual([
    follow.raft.status().lastIndex,
    follow.raft.status().commit < snapshot.metadata.index,
  ], [
    snapshot.metadata.index,
    true,
  ]);
  follow.raft.step({
    type: "InstallSnapshot",
    term: follow.raft.status().term,
    from: leader,
    to: follower,
    snapshot,
  });
  network.stabilize();
  deepStrictEqual(follow.installedSnapshots, []);
  strictEqual(follow.raft.status().commit, snapshot.metadata.index);
  deepStrictEqual(follow.commands, ["x 0", "x 1", "x 2", "y 0"]);
});
