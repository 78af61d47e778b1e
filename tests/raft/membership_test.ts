import { deepStrictEqual, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { MembershipChange, NodeId, ProposeResult } from "../../src/raft/types.ts";
import { TestNetwork } from "./network.ts";

const context = new TextEncoder().encode("p2p id and addresses");

function change(
  network: TestNetwork,
  leader: NodeId,
  membershipChange: MembershipChange,
): ProposeResult {
  const result = network.node(leader).raft.proposeMembership(membershipChange);
  network.stabilize();
  return result;
}

function conf(network: TestNetwork, id: NodeId): { voters: NodeId[]; learners: NodeId[] } {
  return network.node(id).raft.status().confState;
}

Deno.test("a joining node with empty storage is added as learner, catches up, and is promoted to voter", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  for (let i = 0; i < 5; i += 1) ok(network.propose(leader, `before ${i}`).ok);
  network.addEmptyNode(4);
  ok(change(network, leader, { type: "addLearner", nodeId: 4, context }).ok);
  network.tick(3);
  deepStrictEqual(conf(network, 4), { voters: [1, 2, 3], learners: [4] });
  deepStrictEqual(network.node(4).commands, network.node(leader).commands);
  const learnerProgress = network.node(leader).raft.status().progress.find((p) => p.nodeId === 4)!;
  deepStrictEqual([learnerProgress.isLearner, learnerProgress.matchIndex], [
    true,
    network.node(4).appliedIndex,
  ]);
  ok(change(network, leader, { type: "promoteLearner", nodeId: 4 }).ok);
  network.tick(2);
  for (const id of [1, 2, 3, 4]) {
    deepStrictEqual(conf(network, id), { voters: [1, 2, 3, 4], learners: [] });
  }
  // With four voters a quorum is three: the leader and one follower no longer commit.
  const others = [1, 2, 3, 4].filter((id) => id !== leader);
  network.isolate(others[0]!);
  network.isolate(others[1]!);
  ok(network.propose(leader, "needs three").ok);
  network.tick(1);
  ok(!network.node(leader).commands.includes("needs three"));
  network.heal();
  network.tick(2);
  ok(network.node(leader).commands.includes("needs three"));
});

Deno.test("learners receive the log but never count toward a quorum and never campaign", () => {
  const network = TestNetwork.cluster([1, 2, 3], { learners: [4, 5] });
  const leader = network.electLeader();
  ok(leader <= 3);
  const otherVoters = [1, 2, 3].filter((id) => id !== leader);
  for (const id of otherVoters) network.isolate(id);
  ok(network.propose(leader, "learners only").ok);
  network.tick(3);
  strictEqual(
    network.node(4).raft.status().lastIndex,
    network.node(leader).raft.status().lastIndex,
  );
  deepStrictEqual(
    [network.node(4).commands, network.node(leader).commands],
    [[], []],
    "not committed",
  );
  network.heal();
  network.crash(leader);
  network.tick(60);
  for (const id of [4, 5]) notStrictEqual(network.node(id).raft.status().role, "candidate");
  const newLeader = network.electLeader();
  ok(otherVoters.includes(newLeader));
  // The entry the learners held was never committed: the new leader's log replaces it.
  ok(network.propose(newLeader, "after").ok);
  network.tick(2);
  for (const id of [...otherVoters, 4, 5]) {
    deepStrictEqual(network.node(id).commands, ["after"], `node ${id}`);
  }
});

Deno.test("only one membership change may be uncommitted at a time", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const followers = [1, 2, 3].filter((id) => id !== leader);
  for (const id of followers) network.isolate(id);
  ok(change(network, leader, { type: "addLearner", nodeId: 4, context }).ok);
  deepStrictEqual(change(network, leader, { type: "addLearner", nodeId: 5, context }), {
    ok: false,
    reason: { type: "membershipChangeInProgress", leaderId: leader },
  });
  network.heal();
  network.tick(2);
  ok(change(network, leader, { type: "addLearner", nodeId: 5, context }).ok);
});

Deno.test("an invalid membership change is refused with the reason", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  deepStrictEqual(change(network, leader, { type: "promoteLearner", nodeId: 2 }), {
    ok: false,
    reason: {
      type: "invalidMembershipChange",
      leaderId: leader,
      detail: "node 2 is not a learner",
    },
  });
});

Deno.test("a new leader refuses membership changes until it has committed an entry of its term", () => {
  const network = TestNetwork.cluster([1, 2, 3], { preVote: false });
  network.drop((m) => m.type === "AppendEntries");
  network.node(1).raft.campaign();
  network.stabilize();
  strictEqual(network.node(1).raft.status().role, "leader");
  deepStrictEqual(change(network, 1, { type: "addLearner", nodeId: 4, context }), {
    ok: false,
    reason: { type: "membershipChangeInProgress", leaderId: 1 },
  });
  network.heal();
  network.tick(1);
  ok(change(network, 1, { type: "addLearner", nodeId: 4, context }).ok);
});

Deno.test("a membership change takes effect when appended and is reverted when a new leader truncates it", () => {
  const network = TestNetwork.cluster([1, 2, 3, 4, 5]);
  const oldLeader = network.electLeader();
  const buddy = [1, 2, 3, 4, 5].find((id) => id !== oldLeader)!;
  const majority = [1, 2, 3, 4, 5].filter((id) => id !== oldLeader && id !== buddy);
  network.partition([oldLeader, buddy], majority);
  ok(change(network, oldLeader, { type: "addLearner", nodeId: 9, context }).ok);
  network.tick(1);
  for (const id of [oldLeader, buddy]) {
    deepStrictEqual(conf(network, id).learners, [9], `node ${id} uses it at once`);
  }
  network.tick(20);
  const newLeader = network.electLeader();
  ok(majority.includes(newLeader));
  ok(network.propose(newLeader, "from the majority").ok);
  network.heal();
  network.tick(3);
  for (const id of [1, 2, 3, 4, 5]) {
    deepStrictEqual(conf(network, id), { voters: [1, 2, 3, 4, 5], learners: [] }, `node ${id}`);
    deepStrictEqual(network.node(id).commands, ["from the majority"]);
  }
});

Deno.test("a leader that removes itself steps down once the removal commits, and never campaigns again", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  ok(network.propose(leader, "before").ok);
  const others = [1, 2, 3].filter((id) => id !== leader);
  for (const id of others) network.isolate(id);
  ok(change(network, leader, { type: "removeNode", nodeId: leader }).ok);
  const pending = network.node(leader).raft.status();
  deepStrictEqual(
    [pending.role, pending.confState.voters],
    ["leader", others],
    "uncommitted: still leading",
  );
  network.heal();
  network.tick(1);
  strictEqual(network.node(leader).raft.status().role, "follower");
  const successor = network.leader();
  ok(successor !== null && successor !== leader, "the most up-to-date voter took over at once");
  network.tick(50);
  strictEqual(network.leader(), successor);
  ok(network.propose(successor!, "after").ok);
  network.tick(2);
  for (const id of [1, 2, 3].filter((id) => id !== leader)) {
    deepStrictEqual(conf(network, id), {
      voters: [1, 2, 3].filter((v) => v !== leader),
      learners: [],
    });
    deepStrictEqual(network.node(id).commands, ["before", "after"]);
  }
  const removed = network.node(leader).raft.status();
  deepStrictEqual([removed.role, removed.confState.voters.includes(leader)], ["follower", false]);
});

Deno.test("a removed node that missed its removal cannot disrupt the cluster (leader lease)", () => {
  const network = TestNetwork.cluster([1, 2, 3, 4], { preVote: false, checkQuorum: true });
  const leader = network.electLeader();
  const victim = [1, 2, 3, 4].find((id) => id !== leader)!;
  network.isolate(victim);
  ok(change(network, leader, { type: "removeNode", nodeId: victim }).ok);
  network.tick(2);
  const term = network.node(leader).raft.status().term;
  // The removed node still thinks it is a voter: it times out and asks for votes in higher terms.
  network.heal();
  network.drop((m) => m.to === victim);
  network.tick(60);
  ok(network.node(victim).raft.status().term > term);
  deepStrictEqual([network.leader(), network.node(leader).raft.status().term], [leader, term]);
});
