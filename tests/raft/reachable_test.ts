import { deepStrictEqual, ok } from "node:assert/strict";
import { TestNetwork } from "./network.ts";

const context = new TextEncoder().encode("p2p id and addresses");

Deno.test("reportReachable(): a learner whose first messages were lost gets its entries at once, not at the next heartbeat", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  for (let i = 0; i < 3; i += 1) ok(network.propose(leader, `before ${i}`).ok);
  const core = network.node(leader).raft;
  // The new learner does not accept the leader's connection yet: the first probe is lost.
  network.addEmptyNode(4);
  network.drop((message) => message.to === 4);
  ok(core.proposeMembership({ type: "addLearner", nodeId: 4, context }).ok);
  network.stabilize();
  network.heal();
  // Without a tick the paused probe is not sent again.
  network.stabilize();
  deepStrictEqual(network.node(4).commands, []);
  // The learner's greeting reaches the leader: it probes again now.
  core.reportReachable(4);
  network.stabilize();
  deepStrictEqual(network.node(4).commands, network.node(leader).commands);
  ok(network.node(4).commands.length >= 3);
});

Deno.test("reportReachable() does nothing on a follower, nor for a peer the leader is not probing", () => {
  const network = TestNetwork.cluster([1, 2, 3]);
  const leader = network.electLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  const other = [1, 2, 3].find((id) => id !== leader && id !== follower)!;
  const deliveredBefore = network.delivered.length;
  network.node(follower).raft.reportReachable(other);
  network.node(leader).raft.reportReachable(follower);
  network.stabilize();
  deepStrictEqual(network.delivered.slice(deliveredBefore), []);
});
