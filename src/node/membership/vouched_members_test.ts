import assert from "node:assert/strict";
import type { RaftStatus } from "../../raft/raft_core.ts";
import type { ConfState } from "../../raft/types.ts";
import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import { SYSTEM_SCHEDULER } from "../../util/scheduler.ts";
import { MemberDirectory } from "./member_directory.ts";
import { LEADERLESS_CHECKS_MIN, watchMemberForRemoval } from "./removal_watch.ts";

/** The record a status lists for node `nodeId`. */
function listed(nodeId: number) {
  return {
    node_id: nodeId,
    role: "voter" as const,
    p2p_node_id: String.fromCharCode(96 + nodeId).repeat(64),
    p2p_addresses: [`127.0.0.1:${7000 + nodeId}`],
    p2p_relay_url: null,
  };
}

/**
 * Node 3 missed the change that added node 13, which now leads: its log ends at 149 with
 * voters {3, 4}; node 4 has applied up to 174 and lists 3, 4 and 13.
 */
function missedAddition() {
  const conf: ConfState = { voters: [3, 4], learners: [] };
  let appliedIndex = 148;
  const directory = new MemberDirectory(3, {
    latest: () => conf,
    applied: () => conf,
    appliedIndex: () => appliedIndex,
  });
  directory.remember({
    nodeId: 4,
    p2pNodeId: listed(4).p2p_node_id,
    addresses: listed(4).p2p_addresses,
    relayUrl: null,
  });
  const ahead: StatusJson = {
    node_id: 4,
    cluster_id: "cluster-a",
    role: "follower",
    term: 11,
    leader_id: 13,
    commit_index: 174,
    applied_index: 174,
    members: [listed(3), listed(4), listed(13)],
    join: null,
  };
  return { directory, ahead, applyTo: (index: number) => appliedIndex = index };
}

Deno.test("a leaderless member learns from a member ahead of it the members added while it was away, so it lets the new leader in", async () => {
  const { directory, ahead } = missedAddition();
  const newLeaderKey = listed(13).p2p_node_id;
  assert.equal(directory.memberIdOf(newLeaderKey), null, "its log does not know node 13");
  const watch = watchMemberForRemoval({
    nodeId: 3,
    p2pNodeId: listed(3).p2p_node_id,
    scheduler: SYSTEM_SCHEDULER,
    raft: {
      status: () =>
        ({
          leaderId: 0,
          lastIndex: 149,
          confState: { voters: [3, 4], learners: [] },
        }) as unknown as RaftStatus,
    },
    appliedConfState: () => ({ voters: [3, 4], learners: [] }),
    clusterId: () => "cluster-a",
    addressOf: (nodeId) => directory.addressOf(nodeId),
    restarted: false,
    joining: () => false,
    askStatus: () => Promise.resolve(ahead),
    learnMembers: (members, appliedIndex) => directory.rememberVouched(members, appliedIndex),
    onRemoved: (evidence) => assert.fail(`not removed: ${evidence}`),
  });
  for (let check = 0; check < LEADERLESS_CHECKS_MIN; check++) {
    assert.equal(await watch.check(), null);
  }
  assert.equal(directory.memberIdOf(newLeaderKey), 13);
  assert.deepEqual(directory.addressOf(13)?.addresses, ["127.0.0.1:7013"]);
});

Deno.test("a vouched member counts only until this node applies as far as the member that vouched", () => {
  const { directory, ahead, applyTo } = missedAddition();
  const key = listed(13).p2p_node_id;
  directory.rememberVouched(
    ahead.members.map((member) => ({
      nodeId: member.node_id,
      p2pNodeId: member.p2p_node_id!,
      addresses: member.p2p_addresses,
      relayUrl: null,
    })),
    174,
  );
  applyTo(173);
  assert.equal(directory.memberIdOf(key), 13);
  applyTo(174);
  assert.equal(directory.memberIdOf(key), null, "from there on its own log decides");
});
