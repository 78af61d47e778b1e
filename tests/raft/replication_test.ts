import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { AppendEntries, NodeId } from "../../src/raft/types.ts";
import { TestNetwork, type TestNetwork as Network } from "./network.ts";

/** The terms of node `id`'s log from `first` to its last index. */
function logTerms(network: Network, id: NodeId, first: number): (number | null)[] {
  const storage = network.node(id).storage;
  const terms: (number | null)[] = [];
  for (let index = first; index <= storage.lastIndex(); index += 1) terms.push(storage.term(index));
  return terms;
}

function allCommands(network: Network): string[][] {
  return [...network.nodes.values()].map((node) => node.commands);
}

Deno.test("entries proposed on the leader are applied on every node in the same order", () => {
  const network = TestNetwork.cluster([1, 2, 3, 4, 5]);
  const leader = network.electLeader();
  const expected: string[] = [];
  for (let i = 0; i < 30; i += 1) {
    ok(network.propose(leader, `command ${i}`).ok);
    expected.push(`command ${i}`);
  }
  network.tick(2);
  deepStrictEqual(allCommands(network), [expected, expected, expected, expected, expected]);
});

Deno.test("a follower's extra uncommitted entries from an old term are overwritten by the new leader", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const oldLeader = network.electLeader();
  ok(network.propose(oldLeader, "committed").ok);
  network.isolate(oldLeader);
  for (const command of ["lost 1", "lost 2", "lost 3"]) ok(network.propose(oldLeader, command).ok);
  const oldLastIndex = network.node(oldLeader).raft.status().lastIndex;
  network.tick(20);
  const newLeader = network.electLeader();
  ok(network.propose(newLeader, "new 1").ok);
  network.heal();
  network.tick(3);
  const expected = ["committed", "new 1"];
  deepStrictEqual(allCommands(network), [expected, expected, expected]);
  const terms = logTerms(network, oldLeader, 9);
  ok(terms.every((term) => term !== null && term > 2), `old entries replaced: ${terms}`);
  ok(network.node(oldLeader).raft.status().lastIndex < oldLastIndex);
});

Deno.test("Figure 8 (Raft §5.4.2): an old-term entry on a majority is not committed and can be overwritten", () => {
  // Five voters; the bootstrap log holds 10 membership entries, so terms start at index 11.
  const network = TestNetwork.cluster([1, 2, 3, 4, 5], { preVote: false, checkQuorum: false });
  const node = (id: NodeId) => network.node(id).raft;
  // (a) Node 1 leads term 2 and replicates entry 12 ("x") to node 2 only.
  node(1).campaign();
  network.stabilize();
  network.drop((m) => m.type === "AppendEntries" && m.to !== 2);
  ok(network.propose(1, "x").ok);
  deepStrictEqual([logTerms(network, 2, 11), node(1).status().commit], [[2, 2], 11]);
  // (b) Node 1 crashes; node 5 wins term 3 with votes of 3 and 4, appends 12 at term 3 alone, and crashes.
  network.crash(1);
  network.heal();
  network.drop((m) => m.type === "AppendEntries");
  node(5).campaign();
  network.stabilize();
  deepStrictEqual([node(5).status().role, logTerms(network, 5, 11)], ["leader", [2, 3]]);
  network.crash(5);
  // (c) Node 1 restarts and wins term 4, then replicates entry 12 (term 2) to node 3: it is on a majority.
  network.restart(1);
  node(1).campaign();
  network.stabilize();
  node(1).campaign();
  network.stabilize();
  deepStrictEqual([node(1).status().role, node(1).status().term], ["leader", 4]);
  const x = network.node(1).storage.entries(12, 13, Infinity)[0]!;
  const append = (to: NodeId, fields: Partial<AppendEntries>): AppendEntries => ({
    type: "AppendEntries",
    term: 4,
    from: 1,
    to,
    prevLogIndex: 11,
    prevLogTerm: 2,
    entries: [],
    leaderCommit: 11,
    ...fields,
  });
  node(3).step(append(3, { entries: [x] }));
  node(2).step(append(2, { prevLogIndex: 12 }));
  network.stabilize();
  deepStrictEqual([logTerms(network, 2, 12), logTerms(network, 3, 12)], [[2], [2]]);
  const leaderProgress = node(1).status().progress.filter((p) => p.matchIndex >= 12).map((p) =>
    p.nodeId
  );
  deepStrictEqual(leaderProgress.sort(), [1, 2, 3], "node 1 knows entry 12 is on a majority");
  strictEqual(
    node(1).status().commit,
    11,
    "but it is of term 2, so it is not committed by counting",
  );
  // (d) Node 1 crashes; node 5 restarts and wins term 5 (its last term 3 beats term 2), overwriting entry 12.
  network.crash(1);
  network.heal();
  network.restart(5);
  node(5).campaign();
  network.stabilize();
  node(5).campaign();
  network.stabilize();
  strictEqual(node(5).status().role, "leader");
  network.tick(3);
  for (const id of [2, 3, 4, 5]) {
    strictEqual(network.node(id).storage.term(12), 3, `node ${id} entry 12`);
  }
  network.restart(1);
  network.tick(3);
  strictEqual(network.node(1).storage.term(12), 3);
  deepStrictEqual(allCommands(network), [[], [], [], [], []], "x was never applied anywhere");
});

Deno.test("a crashed follower restarts from its storage and catches up", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  ok(network.propose(leader, "before").ok);
  network.crash(follower);
  ok(network.propose(leader, "during").ok);
  network.tick(2);
  network.restart(follower);
  ok(network.propose(leader, "after").ok);
  network.tick(3);
  deepStrictEqual(network.node(follower).commands, ["before", "during", "after"]);
});

Deno.test("a lagging follower is found by fast backtracking in one round trip per conflicting term", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  network.isolate(follower);
  for (let i = 0; i < 40; i += 1) ok(network.propose(leader, `entry ${i}`).ok);
  network.heal();
  const deliveredBefore = network.delivered.length;
  network.tick(2);
  const rejections = network.delivered.slice(deliveredBefore).filter((m) =>
    m.type === "AppendEntriesResponse" && !m.success
  );
  ok(rejections.length <= 1, `${rejections.length} rejections`);
  strictEqual(network.node(follower).commands.length, 40);
});

Deno.test("reportUnreachable() puts a replicating follower back to probing", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const progressState = () =>
    network.node(leader).raft.status().progress.find((p) => p.nodeId === follower)!.state;
  strictEqual(progressState(), "replicate");
  network.node(leader).raft.reportUnreachable(follower);
  strictEqual(progressState(), "probe");
  ok(network.propose(leader, "after").ok);
  network.tick(2);
  strictEqual(progressState(), "replicate");
  deepStrictEqual(network.node(follower).commands, ["after"]);
});

Deno.test("replication survives lost AppendEntries with a full inflight window", () => {
  const network = TestNetwork.cluster([1, 2, 3], { maxInflightMessages: 2, maxMessageBytes: 1 });
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  // Every AppendEntries to the follower is lost for a while: its window fills and nothing is acknowledged.
  network.drop((m) => m.type === "AppendEntries" && m.to === follower);
  for (let i = 0; i < 10; i += 1) ok(network.propose(leader, `entry ${i}`).ok);
  network.tick(3);
  network.heal();
  network.tick(15);
  strictEqual(network.node(follower).commands.length, 10);
});
