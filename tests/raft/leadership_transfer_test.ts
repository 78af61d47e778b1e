import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { TestNetwork } from "./network.ts";

Deno.test("leadership transfer to an up-to-date voter makes it leader in the next term (thesis §3.10)", () => {
  // Check-quorum is on: the target's RequestVote must pass the other voters' leader lease.
  const network = TestNetwork.cluster([1, 2, 3], { checkQuorum: true, preVote: true });
  const leader = network.electLeader();
  const term = network.node(leader).raft.status().term;
  const target = [1, 2, 3].find((id) => id !== leader)!;
  ok(network.propose(leader, "before").ok);
  deepStrictEqual(network.node(leader).raft.transferLeadership(target), { ok: true });
  network.stabilize();
  deepStrictEqual([network.leader(), network.node(target).raft.status().term], [target, term + 1]);
  strictEqual(network.node(leader).raft.status().role, "follower");
  ok(network.propose(target, "after").ok);
  network.tick(2);
  for (const node of network.nodes.values()) deepStrictEqual(node.commands, ["before", "after"]);
});

Deno.test("during a transfer the leader refuses proposals and first brings a lagging target up to date", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const target = [1, 2, 3].find((id) => id !== leader)!;
  network.isolate(target);
  for (let i = 0; i < 5; i += 1) ok(network.propose(leader, `entry ${i}`).ok);
  ok(network.node(leader).raft.transferLeadership(target).ok);
  network.stabilize();
  deepStrictEqual(network.node(leader).raft.propose(new Uint8Array([1])), {
    ok: false,
    reason: { type: "leadershipTransferInProgress", leaderId: leader },
  });
  strictEqual(network.node(leader).raft.status().leadTransferee, target);
  network.heal();
  network.tick(1);
  strictEqual(network.leader(), target);
  deepStrictEqual(network.node(target).commands.length, 5);
  const timeoutNow = network.delivered.filter((m) => m.type === "TimeoutNow");
  strictEqual(timeoutNow.length, 1);
});

Deno.test("a transfer to an unreachable target is aborted after an election timeout", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const target = [1, 2, 3].find((id) => id !== leader)!;
  network.isolate(target);
  ok(network.node(leader).raft.transferLeadership(target).ok);
  network.tick(9);
  strictEqual(network.node(leader).raft.status().leadTransferee, target);
  network.tick(1);
  deepStrictEqual([network.leader(), network.node(leader).raft.status().leadTransferee], [
    leader,
    0,
  ]);
  ok(network.propose(leader, "accepted again").ok);
});

Deno.test("a transfer to a learner is refused; a transfer to itself is a no-op", () => {
  const network = TestNetwork.cluster([1, 2, 3], { learners: [4] });
  const leader = network.electLeader();
  deepStrictEqual(network.node(leader).raft.transferLeadership(4), {
    ok: false,
    reason: {
      type: "invalidRequest",
      leaderId: leader,
      detail: "node 4 is not a voter: leadership can only go to a voter",
    },
  });
  deepStrictEqual(network.node(leader).raft.transferLeadership(leader), { ok: true });
  strictEqual(network.node(leader).raft.status().leadTransferee, 0);
});
