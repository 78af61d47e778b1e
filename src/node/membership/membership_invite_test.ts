import assert from "node:assert/strict";
import { encodeCommand } from "../../state_machine/commands.ts";
import { ClusterError } from "../replication/cluster_error.ts";
import { MembershipManager } from "./membership_manager.ts";
import { PROMOTION_POLICY_DEFAULT } from "./autopilot.ts";
import { InProcessCluster, memberInfoOf, type TestMember } from "../testing/in_process_cluster.ts";

const signal = () => AbortSignal.timeout(10_000);
const HASH = "ab".repeat(32);

function isRefused(message: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof ClusterError && error.code === "invite_refused" && message.test(error.message);
}

async function createInvite(leader: TestMember, uses: number): Promise<void> {
  const result = await leader.raft.propose(encodeCommand({
    type: "createInvite",
    tokenHash: HASH,
    role: "voter",
    expiresAtMs: Date.now() + 60_000,
    uses,
    createdBy: "test",
    nowMs: Date.now(),
  }));
  assert.equal(result.type, "createInvite");
}

Deno.test("MembershipManager.joinByInvite() adds the learner and uses the invite in one entry; a used one is refused", async () => {
  const cluster = InProcessCluster.create({ voters: 1 });
  try {
    const leader = await cluster.leader();
    await createInvite(leader, 1);
    const joiner = cluster.addNode(memberInfoOf(2));
    const before = leader.raft.status().lastIndex;
    const { index } = await leader.membership.joinByInvite(joiner.info, {
      tokenHash: HASH,
      signal: signal(),
    });
    assert.equal(index, before + 1, "one entry both added the learner and used the invite");
    assert.deepStrictEqual(leader.raft.status().confState.learners, [2]);
    assert.equal(leader.stateMachine.invites()[0]?.state, "used");
    // The same joiner asking again is a re-join, not a second use.
    await leader.membership.joinByInvite(joiner.info, { tokenHash: HASH, signal: signal() });
    const other = cluster.addNode(memberInfoOf(3));
    await assert.rejects(
      leader.membership.joinByInvite(other.info, { tokenHash: HASH, signal: signal() }),
      isRefused(/the invite ticket is used/),
    );
    assert.deepStrictEqual(leader.raft.status().confState.learners, [2]);
  } finally {
    await cluster.close();
  }
});

Deno.test("MembershipManager.joinByInvite(): an invite revoked after the check is refused by the entry, and its learner removed", async () => {
  const cluster = InProcessCluster.create({ voters: 1 });
  try {
    const leader = await cluster.leader();
    await createInvite(leader, 1);
    await leader.raft.propose(encodeCommand({ type: "revokeInvite", tokenHash: HASH }));
    // A check that ran before the revocation was applied: it still found the invite usable.
    const staleCheck = new MembershipManager({
      nodeId: leader.nodeId,
      raft: leader.raft,
      directory: leader.directory,
      policy: PROMOTION_POLICY_DEFAULT,
      inviteRefusal: () => null,
    });
    const joiner = cluster.addNode(memberInfoOf(2));
    await assert.rejects(
      staleCheck.joinByInvite(joiner.info, { tokenHash: HASH, signal: signal() }),
      isRefused(/the invite ticket is revoked/),
    );
    assert.deepStrictEqual(leader.raft.status().confState.learners, []);
    assert.ok(leader.stateMachine.isRevoked(joiner.info.p2pNodeId));
  } finally {
    await cluster.close();
  }
});
