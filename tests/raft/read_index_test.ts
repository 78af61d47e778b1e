import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { TestNetwork } from "./network.ts";

Deno.test("ReadIndex on the leader: the read state arrives after a heartbeat round, at the commit index", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  ok(network.propose(leader, "written").ok);
  const commit = network.node(leader).raft.status().commit;
  const heartbeatsBefore = network.delivered.filter((m) => m.type === "HeartbeatResponse").length;
  deepStrictEqual(network.node(leader).raft.readIndex(7), { ok: true });
  strictEqual(network.node(leader).readStates.length, 0, "not before leadership is confirmed");
  network.stabilize();
  deepStrictEqual(network.node(leader).readStates, [{ requestId: 7, index: commit }]);
  const confirmations = network.delivered.filter((m) =>
    m.type === "HeartbeatResponse" && m.readContext > 0
  );
  ok(confirmations.length >= 1);
  ok(network.delivered.filter((m) => m.type === "HeartbeatResponse").length > heartbeatsBefore);
});

Deno.test("ReadIndex on a single voter is answered at once", () => {
  const network = TestNetwork.cluster([1]);
  network.node(1).raft.campaign();
  network.stabilize();
  ok(network.propose(1, "only").ok);
  ok(network.node(1).raft.readIndex(1).ok);
  network.stabilize();
  deepStrictEqual(network.node(1).readStates, [{
    requestId: 1,
    index: network.node(1).raft.status().commit,
  }]);
  strictEqual(network.delivered.length, 0);
});

Deno.test("ReadIndex via a follower is forwarded to the leader and answered to the follower", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  ok(network.propose(leader, "written").ok);
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  ok(network.node(follower).raft.readIndex(42).ok);
  network.stabilize();
  deepStrictEqual(network.node(follower).readStates, [
    { requestId: 42, index: network.node(leader).raft.status().commit },
  ]);
  deepStrictEqual(network.node(leader).readStates, []);
});

Deno.test("ReadIndex with no known leader is refused with notLeader", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  deepStrictEqual(network.node(2).raft.readIndex(1), {
    ok: false,
    reason: { type: "notLeader", leaderId: 0 },
  });
});

Deno.test("a deposed leader cut off from the majority cannot confirm a read", () => {
  const network = TestNetwork.cluster([1, 2, 3], { checkQuorum: false });
  const oldLeader = network.electLeader();
  const majority = [1, 2, 3].filter((id) => id !== oldLeader);
  network.partition([oldLeader], majority);
  network.tick(25);
  const newLeader = network.electLeader();
  ok(majority.includes(newLeader));
  ok(network.propose(newLeader, "newer write").ok);
  // The old leader still believes it leads (check-quorum is off) and accepts the read...
  strictEqual(network.node(oldLeader).raft.status().role, "leader");
  ok(network.node(oldLeader).raft.readIndex(5).ok);
  network.tick(5);
  // ...but never gets a quorum of heartbeat answers, so no stale read is ever served.
  deepStrictEqual(network.node(oldLeader).readStates, []);
});

Deno.test("a new leader holds reads until it has committed an entry of its term", () => {
  const network = TestNetwork.cluster([1, 2, 3], { preVote: false });
  network.drop((m) => m.type === "AppendEntries");
  network.node(1).raft.campaign();
  network.stabilize();
  strictEqual(network.node(1).raft.status().role, "leader");
  ok(network.node(1).raft.readIndex(3).ok);
  network.stabilize();
  deepStrictEqual(network.node(1).readStates, []);
  network.heal();
  network.tick(2);
  const status = network.node(1).raft.status();
  deepStrictEqual(network.node(1).readStates, [{ requestId: 3, index: status.commit }]);
  strictEqual(
    network.node(1).storage.term(status.commit),
    status.term,
    "the read index is in the leader's term",
  );
});
