import { deepStrictEqual, notStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { NodeId } from "../../src/raft/types.ts";
import { TestNetwork } from "./network.ts";

function terms(network: TestNetwork): number[] {
  return [...network.nodes.values()].map((node) => node.raft.status().term);
}

function roles(network: TestNetwork): string[] {
  return [...network.nodes.values()].map((node) => node.raft.status().role);
}

Deno.test("a 3-node cluster elects exactly one leader, and every node follows it", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const network = TestNetwork.cluster([1, 2, 3], { seed });
    const leader = network.electLeader();
    network.tick(2);
    deepStrictEqual(roles(network).filter((role) => role === "leader").length, 1, `seed ${seed}`);
    for (const node of network.nodes.values()) {
      strictEqual(node.raft.status().leaderId, leader, `seed ${seed}`);
    }
  }
});

Deno.test("a split vote is resolved by randomized election timeouts", () => {
  const network = TestNetwork.cluster([1, 2, 3, 4], { preVote: false, checkQuorum: false });
  // Nodes 1 and 3 campaign at once; 2 only hears 1 and 4 only hears 3: two votes each, no majority of 4.
  network.drop((m) =>
    m.type === "RequestVote" && ((m.from === 1 && m.to === 4) || (m.from === 3 && m.to === 2))
  );
  network.node(1).raft.campaign();
  network.node(3).raft.campaign();
  network.stabilize();
  deepStrictEqual(roles(network), ["candidate", "follower", "candidate", "follower"]);
  deepStrictEqual(terms(network), [2, 2, 2, 2]);
  network.heal();
  const leader = network.electLeader();
  network.tick(2);
  ok(network.node(leader).raft.status().term > 2, "the split term produced no leader");
  deepStrictEqual(roles(network).filter((role) => role === "leader").length, 1);
});

Deno.test("pre-vote keeps a partitioned node from inflating its term, so healing does not depose the leader", () => {
  const network = TestNetwork.cluster([1, 2, 3], { preVote: true, checkQuorum: true });
  const leader = network.electLeader();
  const term = network.node(leader).raft.status().term;
  const outsider = [1, 2, 3].find((id) => id !== leader)!;
  network.isolate(outsider);
  network.tick(100);
  strictEqual(
    network.node(outsider).raft.status().term,
    term,
    "pre-votes failed, so the term stayed",
  );
  network.heal();
  network.tick(5);
  deepStrictEqual([network.leader(), network.node(leader).raft.status().term], [leader, term]);
});

Deno.test("without pre-vote a partitioned node inflates its term and deposes the leader when it returns", () => {
  const network = TestNetwork.cluster([1, 2, 3], { preVote: false, checkQuorum: false });
  const leader = network.electLeader();
  const term = network.node(leader).raft.status().term;
  const outsider = [1, 2, 3].find((id) => id !== leader)!;
  network.isolate(outsider);
  network.tick(100);
  ok(network.node(outsider).raft.status().term > term + 3);
  network.heal();
  // Its next RequestVote carries the inflated term: the leader must move to it and step down.
  network.tick(25);
  ok(
    network.node(leader).raft.status().term > term + 3,
    "the old leader was forced into the inflated term",
  );
});

Deno.test("check-quorum: an isolated leader steps down within an election timeout; the majority elects another", () => {
  const network = TestNetwork.cluster([1, 2, 3], { checkQuorum: true });
  const oldLeader = network.electLeader();
  network.isolate(oldLeader);
  network.tick(20);
  strictEqual(network.node(oldLeader).raft.status().role, "follower");
  const newLeader = network.electLeader();
  notStrictEqual(newLeader, oldLeader);
});

Deno.test("leader lease: a node that stops hearing the leader cannot depose it while the others do", () => {
  const network = TestNetwork.cluster([1, 2, 3], { preVote: false, checkQuorum: true });
  const leader = network.electLeader();
  const term = network.node(leader).raft.status().term;
  const deaf = [1, 2, 3].find((id) => id !== leader)!;
  // The deaf node hears nobody but can still send: its vote requests reach the others.
  network.drop((m) => m.to === deaf);
  network.tick(60);
  ok(network.node(deaf).raft.status().term > term, "it campaigned in ever higher terms");
  deepStrictEqual([network.leader(), network.node(leader).raft.status().term], [leader, term]);
  ok(network.propose(leader, "still committing").ok);
  network.tick(1);
  const other = [1, 2, 3].find((id) => id !== leader && id !== deaf)!;
  deepStrictEqual(network.node(other).commands, ["still committing"]);
});

Deno.test("election restriction: a node missing committed entries cannot become leader (Raft §5.4.1)", () => {
  const network = TestNetwork.cluster([1, 2, 3], { checkQuorum: true });
  const leader = network.electLeader();
  const [behind, upToDate] = [1, 2, 3].filter((id) => id !== leader) as [NodeId, NodeId];
  network.isolate(behind);
  ok(network.propose(leader, "x").ok);
  network.tick(1);
  network.crash(leader);
  network.heal();
  network.node(behind).raft.campaign();
  network.stabilize();
  notStrictEqual(network.node(behind).raft.status().role, "leader");
  strictEqual(network.electLeader(), upToDate);
  network.tick(2);
  deepStrictEqual(network.node(behind).commands, ["x"]);
});

Deno.test("a candidate that is not leader says notLeader with no leader known", () => {
  const network = TestNetwork.cluster([1, 2, 3], { preVote: false });
  network.isolate(1);
  network.node(1).raft.campaign();
  network.stabilize();
  strictEqual(network.node(1).raft.status().role, "candidate");
  deepStrictEqual(network.node(1).raft.propose(new Uint8Array([1])), {
    ok: false,
    reason: { type: "notLeader", leaderId: 0 },
  });
});
