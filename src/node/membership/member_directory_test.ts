import assert from "node:assert/strict";
import type { ConfState, Entry, NodeId } from "../../raft/types.ts";
import { encodeMemberInfo, type MemberInfo } from "../../state_machine/member_info.ts";
import { MemberDirectory, sameAddresses } from "./member_directory.ts";

/** A record for node `nodeId` with a key that is distinct per `keyOf` (default: the id). */
function info(nodeId: NodeId, options: { keyOf?: number; port?: number } = {}): MemberInfo {
  const key = (options.keyOf ?? nodeId).toString(16).padStart(64, "0");
  return {
    nodeId,
    p2pNodeId: key,
    addresses: [`127.0.0.1:${options.port ?? 7000 + nodeId}`],
    relayUrl: null,
  };
}

/**
 * A directory for node `selfId` whose configurations the test sets through `conf` (the
 * latest) and `applied` (which follows `conf` unless a test sets it apart).
 */
function directoryOf(selfId: NodeId, initial: ConfState) {
  const state: { conf: ConfState; applied: ConfState | null } = { conf: initial, applied: null };
  const directory = new MemberDirectory(selfId, {
    latest: () => state.conf,
    applied: () => state.applied ?? state.conf,
  });
  return { directory, state };
}

Deno.test("MemberDirectory.addressOf() and memberIdOf() answer for members of the configuration in force", () => {
  const { directory } = directoryOf(1, { voters: [1, 2], learners: [3] });
  for (const id of [1, 2, 3, 4]) directory.remember(info(id));
  assert.deepStrictEqual(directory.addressOf(2), {
    p2pNodeId: info(2).p2pNodeId,
    addresses: ["127.0.0.1:7002"],
    relayUrl: null,
  });
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), 3);
  // Node 4 has a record but is no member: neither its address nor its key counts.
  assert.equal(directory.addressOf(4), null);
  assert.equal(directory.memberIdOf(info(4).p2pNodeId), null);
  assert.equal(directory.memberIdOf("f".repeat(64)), null);
});

Deno.test("MemberDirectory.addressOf(self) is null and this node's own key is no peer", () => {
  const { directory } = directoryOf(1, { voters: [1, 2], learners: [] });
  directory.remember(info(1));
  directory.remember(info(2));
  assert.equal(directory.addressOf(1), null);
  assert.equal(directory.memberIdOf(info(1).p2pNodeId), null);
  assert.deepStrictEqual(directory.recordOf(1), info(1));
});

Deno.test("MemberDirectory keeps counting a member whose removal is appended but not yet applied", () => {
  const { directory, state } = directoryOf(1, { voters: [1, 2, 3], learners: [] });
  for (const id of [1, 2, 3]) directory.remember(info(id));
  // Node 3 may still win an election and truncate the uncommitted removal: its
  // AppendEntries must get through.
  state.applied = { voters: [1, 2, 3], learners: [] };
  state.conf = { voters: [1, 2], learners: [] };
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), 3);
  assert.equal(directory.addressOf(3)?.p2pNodeId, info(3).p2pNodeId);
  state.applied = { voters: [1, 2], learners: [] };
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), null);
});

Deno.test("MemberDirectory stops counting a removed member once no configuration names it", () => {
  const { directory, state } = directoryOf(1, { voters: [1, 2, 3], learners: [] });
  for (const id of [1, 2, 3]) directory.remember(info(id));
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), 3);
  state.conf = { voters: [1, 2], learners: [] };
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), null);
  assert.equal(directory.addressOf(3), null);
  assert.equal(directory.memberIdOf(info(2).p2pNodeId), 2);
});

Deno.test("MemberDirectory.memberIdOf() finds a key that rejoined under a new id after its old id was removed", () => {
  const { directory, state } = directoryOf(1, { voters: [1, 2, 3], learners: [] });
  for (const id of [1, 2, 3]) directory.remember(info(id));
  state.conf = { voters: [1, 2], learners: [] };
  // The operator wiped node 3's database but kept its identity key, and it joined as node 4.
  directory.remember(info(4, { keyOf: 3 }));
  state.conf = { voters: [1, 2], learners: [4] };
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), 4);
  assert.deepStrictEqual(directory.addressOf(4)?.p2pNodeId, info(3).p2pNodeId);
});

Deno.test("MemberDirectory counts provisional members only until this node's own log names it", () => {
  const { directory, state } = directoryOf(3, { voters: [], learners: [] });
  // The seed reported voters 1 and 2, and node 5, which was removed after the seed answered.
  directory.rememberProvisional([info(1), info(2), info(5)]);
  assert.equal(directory.memberIdOf(info(1).p2pNodeId), 1);
  assert.equal(directory.memberIdOf(info(5).p2pNodeId), 5);
  assert.notEqual(directory.addressOf(2), null);
  // This node's log reaches the entry that added it: the log decides from now on.
  state.conf = { voters: [1, 2], learners: [3] };
  assert.equal(directory.memberIdOf(info(1).p2pNodeId), 1);
  assert.equal(directory.memberIdOf(info(5).p2pNodeId), null);
  assert.equal(directory.addressOf(5), null);
  // Even after this node is removed again, the seed's old list does not come back.
  state.conf = { voters: [1, 2], learners: [] };
  assert.equal(directory.memberIdOf(info(5).p2pNodeId), null);
  assert.equal(directory.addressOf(5), null);
});

Deno.test("MemberDirectory.learnFromEntries() records the member of every addLearner entry and nothing else", () => {
  const { directory } = directoryOf(1, { voters: [1], learners: [2, 3] });
  const entries: Entry[] = [
    { type: "normal", term: 2, index: 5, data: new Uint8Array([1]) },
    {
      type: "membership",
      term: 2,
      index: 6,
      change: { type: "addLearner", nodeId: 2, context: encodeMemberInfo(info(2)) },
    },
    { type: "membership", term: 2, index: 7, change: { type: "promoteLearner", nodeId: 2 } },
    // A context that is not a member record is skipped, not thrown.
    {
      type: "membership",
      term: 2,
      index: 8,
      change: { type: "addLearner", nodeId: 3, context: new Uint8Array([0xc1]) },
    },
  ];
  directory.learnFromEntries(entries);
  assert.deepStrictEqual(directory.recordOf(2), info(2));
  assert.equal(directory.recordOf(3), null);
  assert.equal(directory.memberIdOf(info(2).p2pNodeId), 2);
});

Deno.test("MemberDirectory.remember() replaces an older record of the same member", () => {
  const { directory } = directoryOf(1, { voters: [1, 2], learners: [] });
  directory.remember(info(2));
  directory.remember(info(2, { port: 9002 }));
  assert.deepStrictEqual(directory.addressOf(2)?.addresses, ["127.0.0.1:9002"]);
});

Deno.test("sameAddresses() compares addresses in order and the relay, not the id", () => {
  const base = info(2);
  assert.equal(sameAddresses(base, { ...base, nodeId: 9 }), true);
  assert.equal(sameAddresses(base, info(2, { port: 9002 })), false);
  assert.equal(sameAddresses(base, { ...base, relayUrl: "https://relay.example" }), false);
  const two = { ...base, addresses: ["127.0.0.1:1", "127.0.0.1:2"] };
  assert.equal(sameAddresses(two, { ...base, addresses: ["127.0.0.1:2", "127.0.0.1:1"] }), false);
  assert.equal(sameAddresses(two, { ...base, addresses: ["127.0.0.1:1"] }), false);
});

Deno.test("MemberDirectory.memberIdOf() answers null for a revoked key, whatever the records say", () => {
  const revoked = new Set<string>();
  const state = { conf: { voters: [1, 2], learners: [3] } as ConfState };
  const directory = new MemberDirectory(1, {
    latest: () => state.conf,
    applied: () => state.conf,
    revoked: (p2pNodeId) => revoked.has(p2pNodeId),
  });
  for (const id of [1, 2, 3]) directory.remember(info(id));
  directory.rememberProvisional([info(5)]);
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), 3);
  revoked.add(info(3).p2pNodeId).add(info(5).p2pNodeId);
  assert.equal(directory.isRevoked(info(3).p2pNodeId), true);
  assert.equal(directory.memberIdOf(info(3).p2pNodeId), null);
  assert.equal(directory.memberIdOf(info(5).p2pNodeId), null);
  assert.equal(directory.memberIdOf(info(2).p2pNodeId), 2);
});
