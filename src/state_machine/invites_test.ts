import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { MembershipChange } from "../raft/types.ts";
import { type Command, encodeCommand } from "./commands.ts";
import {
  decodeLearnerContext,
  encodeInvitedMember,
  INVITE_LIMITS,
  type InviteRole,
} from "./invites.ts";
import { KvStateMachine } from "./kv_state_machine.ts";
import { encodeMemberInfo, type MemberInfo } from "./member_info.ts";
import { MemoryStateStore } from "./memory_state_store.ts";
import { withSqliteStore } from "./store_fixtures.ts";
import type { StateStore } from "./state_store.ts";
import type { ApplyResult } from "./apply_result.ts";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);
const NOW = 1_700_000_000_000;
const MINUTE = 60_000;

function info(nodeId: number): MemberInfo {
  return {
    nodeId,
    p2pNodeId: `p2p-${nodeId}`,
    addresses: [`127.0.0.1:${7000 + nodeId}`],
    relayUrl: null,
  };
}

/** A founded single-node cluster over `store`, and a function that appends and applies. */
function cluster(store: StateStore = new MemoryStateStore()) {
  const sm = new KvStateMachine(store);
  let index = 0;
  const command = (value: Command): ApplyResult =>
    sm.apply({ type: "normal", term: 1, index: ++index, data: encodeCommand(value) });
  const membership = (change: MembershipChange): ApplyResult =>
    sm.apply({ type: "membership", term: 1, index: ++index, change });
  membership({ type: "addLearner", nodeId: 1, context: encodeMemberInfo(info(1)) });
  membership({ type: "promoteLearner", nodeId: 1 });
  command({ type: "initCluster", clusterId: "c" });
  const invite = (
    tokenHash: string,
    options: { uses?: number; ttlMs?: number; nowMs?: number; role?: InviteRole } = {},
  ) =>
    command({
      type: "createInvite",
      tokenHash,
      role: options.role ?? "voter",
      expiresAtMs: (options.nowMs ?? NOW) + (options.ttlMs ?? 15 * MINUTE),
      uses: options.uses ?? 1,
      createdBy: "ops@host",
      nowMs: options.nowMs ?? NOW,
    });
  const joinBy = (nodeId: number, tokenHash: string, nowMs = NOW) =>
    membership({
      type: "addLearner",
      nodeId,
      context: encodeInvitedMember(info(nodeId), { tokenHash, nowMs }),
    });
  return { sm, command, membership, invite, joinBy };
}

function refusalOf(result: ApplyResult): string | null {
  strictEqual(result.type, "membership");
  return result.type === "membership" ? result.inviteRefusal ?? null : null;
}

Deno.test("invites: the entry that adds the learner consumes the ticket, which is then used", () => {
  const { sm, invite, joinBy } = cluster();
  strictEqual(invite(HASH_A).type, "createInvite");
  strictEqual(sm.inviteRefusal(HASH_A, NOW), null);
  const added = joinBy(2, HASH_A);
  strictEqual(refusalOf(added), null);
  deepStrictEqual(sm.appliedConfState().learners, [2]);
  deepStrictEqual(sm.members().find((member) => member.nodeId === 2)?.info, info(2));
  strictEqual(sm.invites()[0]?.state, "used");
  strictEqual(sm.invites()[0]?.usesLeft, 0);
  strictEqual(sm.inviteRefusal(HASH_A, NOW), "used");
});

Deno.test("invites: a ticket with several uses admits that many joiners, then is used", () => {
  const { sm, invite, joinBy } = cluster();
  invite(HASH_A, { uses: 2 });
  strictEqual(refusalOf(joinBy(2, HASH_A)), null);
  strictEqual(sm.invites()[0]?.usesLeft, 1);
  strictEqual(refusalOf(joinBy(3, HASH_A)), null);
  strictEqual(refusalOf(joinBy(4, HASH_A)), "used");
});

Deno.test("invites: expiry is checked against the time in the entry; unknown and revoked are named", () => {
  const { sm, command, invite, joinBy } = cluster();
  invite(HASH_A, { ttlMs: MINUTE });
  strictEqual(sm.inviteRefusal(HASH_A, NOW + MINUTE - 1), null);
  strictEqual(refusalOf(joinBy(2, HASH_A, NOW + MINUTE)), "expired");
  strictEqual(sm.invites()[0]?.usesLeft, 1, "a refused use consumes nothing");
  strictEqual(refusalOf(joinBy(3, HASH_B)), "unknown");
  invite(HASH_B);
  strictEqual(command({ type: "revokeInvite", tokenHash: HASH_B }).type, "revokeInvite");
  strictEqual(refusalOf(joinBy(4, HASH_B)), "revoked");
  const again = command({ type: "revokeInvite", tokenHash: HASH_B });
  strictEqual(again.type, "error");
  ok(again.type === "error" && again.error.includes("revoked"));
});

Deno.test("invites: records long past expiry are forgotten when another is created; the count is bounded", () => {
  const { sm, invite } = cluster();
  invite(HASH_A, { ttlMs: MINUTE });
  invite(HASH_B, { nowMs: NOW + MINUTE + INVITE_LIMITS.keptAfterExpiryMs });
  deepStrictEqual(sm.invites().map((record) => record.tokenHash), [HASH_B]);
  for (let i = 1; i < INVITE_LIMITS.recordsMax; i++) {
    strictEqual(invite(i.toString(16).padStart(64, "0")).type, "createInvite");
  }
  const refused = invite("c".repeat(64));
  strictEqual(refused.type, "error");
  strictEqual(sm.invites().length, INVITE_LIMITS.recordsMax);
  strictEqual(invite(HASH_B).type, "error", "a hash is recorded once");
});

Deno.test("invites: a snapshot carries the records, and both stores give the same bytes", () => {
  const run = (store: StateStore) => {
    const { sm, invite, joinBy } = cluster(store);
    invite(HASH_A, { uses: 2 });
    joinBy(2, HASH_A);
    invite(HASH_B);
    return sm.snapshotData();
  };
  const memory = run(new MemoryStateStore());
  withSqliteStore(({ store }) => deepStrictEqual(run(store), memory));
  const restored = new KvStateMachine(new MemoryStateStore());
  restored.restore({
    metadata: { index: 6, term: 1, confState: { voters: [1], learners: [2] } },
    data: memory,
  });
  deepStrictEqual(restored.invites().map((record) => record.usesLeft), [1, 1]);
});

Deno.test("decodeLearnerContext() reads a bare member record and an invited one; refuses others", () => {
  deepStrictEqual(decodeLearnerContext(encodeMemberInfo(info(2))), {
    ok: true,
    value: { member: info(2), invite: null },
  });
  const invite = { tokenHash: HASH_A, nowMs: NOW };
  deepStrictEqual(decodeLearnerContext(encodeInvitedMember(info(2), invite)), {
    ok: true,
    value: { member: info(2), invite },
  });
  strictEqual(decodeLearnerContext(new Uint8Array([0xc1])).ok, false);
  strictEqual(
    decodeLearnerContext(encodeInvitedMember(info(2), { tokenHash: "x", nowMs: 1 })).ok,
    false,
  );
});

Deno.test("invites: the record's role decides: a learner invite's member is kept a learner until removed, a voter invite's is not", () => {
  const { sm, invite, joinBy, membership } = cluster();
  invite(HASH_A, { role: "learner" });
  invite(HASH_B);
  joinBy(2, HASH_A);
  joinBy(3, HASH_B);
  strictEqual(sm.isInvitedLearner(2), true);
  strictEqual(sm.isInvitedLearner(3), false);
  membership({ type: "removeNode", nodeId: 2 });
  strictEqual(sm.isInvitedLearner(2), false);
});

Deno.test("invites: a refused learner invite keeps nobody a learner", () => {
  const { sm, invite, joinBy } = cluster();
  invite(HASH_A, { role: "learner", ttlMs: MINUTE });
  strictEqual(refusalOf(joinBy(2, HASH_A, NOW + MINUTE)), "expired");
  strictEqual(sm.isInvitedLearner(2), false);
});

Deno.test("invites: a snapshot carries the invited learners, the same in both stores", () => {
  const run = (store: StateStore) => {
    const { sm, invite, joinBy } = cluster(store);
    invite(HASH_A, { role: "learner", uses: 2 });
    joinBy(2, HASH_A);
    joinBy(3, HASH_A);
    return sm.snapshotData();
  };
  const memory = run(new MemoryStateStore());
  withSqliteStore(({ store }) => deepStrictEqual(run(store), memory));
  const restored = new KvStateMachine(new MemoryStateStore());
  restored.restore({
    metadata: { index: 6, term: 1, confState: { voters: [1], learners: [2, 3] } },
    data: memory,
  });
  deepStrictEqual([restored.isInvitedLearner(2), restored.isInvitedLearner(3)], [true, true]);
});
