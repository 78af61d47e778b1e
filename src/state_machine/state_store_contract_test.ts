/**
 * The behaviour both `StateStore`s share, so that the simulator's `MemoryStateStore` says
 * something about the node's `SqliteStateStore`.
 */

import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import type { KvResult } from "./apply_result.ts";
import { MemoryStateStore } from "./memory_state_store.ts";
import type { StateStore } from "./state_store.ts";
import { withSqliteStore } from "./store_fixtures.ts";

const kinds: [string, (body: (store: StateStore) => void) => void][] = [
  ["MemoryStateStore", (body) => body(new MemoryStateStore())],
  ["SqliteStateStore", (body) => withSqliteStore(({ store }) => body(store))],
];

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (value: string) => new TextEncoder().encode(value);
const keysOf = (pairs: { key: Uint8Array }[]) => pairs.map((pair) => [...pair.key]);

for (const [name, withStore] of kinds) {
  const test = (title: string, body: (store: StateStore) => void) =>
    Deno.test(`${name}: ${title}`, () =>
      withStore((store) => store.transaction(() => body(store))));

  test("put, get and delete binary and empty keys and values", (store) => {
    store.put(bytes(), bytes());
    store.put(bytes(0, 0xff), bytes(1, 2, 3));
    deepStrictEqual([store.get(bytes()), store.get(bytes(0, 0xff)), store.get(bytes(0))], [
      bytes(),
      bytes(1, 2, 3),
      null,
    ]);
    store.put(bytes(0, 0xff), bytes(9));
    deepStrictEqual(store.get(bytes(0, 0xff)), bytes(9));
    deepStrictEqual([store.delete(bytes(0, 0xff)), store.delete(bytes(0, 0xff))], [true, false]);
    strictEqual(store.get(bytes(0, 0xff)), null);
  });

  test("list() returns the keys with the prefix in byte order, up to the limit", (store) => {
    const keys = [
      bytes(1),
      bytes(1, 0),
      bytes(1, 0xff),
      bytes(1, 0xff, 0xff),
      bytes(2),
      bytes(0xff),
      bytes(0xff, 0),
      bytes(),
    ];
    for (const key of keys) store.put(key, key);
    deepStrictEqual(keysOf(store.list(bytes(1), { limit: 10 })), [[1], [1, 0], [1, 0xff], [
      1,
      0xff,
      0xff,
    ]]);
    deepStrictEqual(keysOf(store.list(bytes(1, 0xff), { limit: 10 })), [[1, 0xff], [
      1,
      0xff,
      0xff,
    ]]);
    deepStrictEqual(keysOf(store.list(bytes(0xff), { limit: 10 })), [[0xff], [0xff, 0]]);
    deepStrictEqual(keysOf(store.list(bytes(), { limit: 3 })), [[], [1], [1, 0]]);
    deepStrictEqual(keysOf(store.list(bytes(3), { limit: 10 })), []);
    deepStrictEqual(store.list(bytes(2), { limit: 1 }), [{ key: bytes(2), value: bytes(2) }]);
  });

  test("list() pages with startAfter, inside the prefix only", (store) => {
    for (const key of ["a", "ab", "abc", "b", "ba"]) store.put(text(key), text(key));
    const page = (prefix: string, after?: string) =>
      store.list(
        text(prefix),
        after === undefined ? { limit: 2 } : { limit: 2, startAfter: text(after) },
      )
        .map((pair) => new TextDecoder().decode(pair.key));
    deepStrictEqual(page("a"), ["a", "ab"]);
    deepStrictEqual(page("a", "ab"), ["abc"]);
    deepStrictEqual(page("b", "a"), ["b", "ba"]);
    deepStrictEqual(page("a", "abc"), []);
    deepStrictEqual(page("", "ab"), ["abc", "b"]);
  });

  test("revoked keys are kept by key, oldest revocation first, and cleared with the rest", (store) => {
    store.revokeKey({ p2pNodeId: "p9", index: 12 });
    store.revokeKey({ p2pNodeId: "p3", index: 7 });
    deepStrictEqual(store.revokedKeys(), [
      { p2pNodeId: "p3", index: 7 },
      { p2pNodeId: "p9", index: 12 },
    ]);
    deepStrictEqual([store.isRevoked("p3"), store.isRevoked("p4")], [true, false]);
    store.forgetRevokedKey("p3");
    store.forgetRevokedKey("p4");
    deepStrictEqual(store.revokedKeys(), [{ p2pNodeId: "p9", index: 12 }]);
    store.clear();
    deepStrictEqual([store.revokedKeys(), store.isRevoked("p9")], [[], false]);
  });

  test("member records are kept by node id", (store) => {
    const info = (nodeId: number) => ({
      nodeId,
      p2pNodeId: `p${nodeId}`,
      addresses: [`127.0.0.1:${7000 + nodeId}`],
      relayUrl: null,
    });
    store.putMemberInfo(info(3));
    store.putMemberInfo(info(1));
    store.putMemberInfo({ ...info(3), relayUrl: "https://relay.example" });
    deepStrictEqual(store.memberInfos(), [info(1), {
      ...info(3),
      relayUrl: "https://relay.example",
    }]);
    store.deleteMemberInfo(1);
    store.deleteMemberInfo(7);
    deepStrictEqual(store.memberInfos().map((i) => i.nodeId), [3]);
  });

  test("applied index, configuration and cluster id are kept", (store) => {
    deepStrictEqual([store.appliedIndex(), store.appliedConfState(), store.clusterId()], [0, {
      voters: [],
      learners: [],
    }, null]);
    store.setAppliedIndex(7);
    store.setAppliedConfState({ voters: [1, 2], learners: [3] });
    store.setClusterId("c-1");
    deepStrictEqual([store.appliedIndex(), store.appliedConfState(), store.clusterId()], [7, {
      voters: [1, 2],
      learners: [3],
    }, "c-1"]);
  });

  test("sessions are found by client id and ordered by the index that last used them", (store) => {
    const result = (index: number): KvResult => ({
      type: "compareAndSet",
      index,
      succeeded: false,
      current: bytes(index),
    });
    store.putSession({ clientId: "a", sequence: 1, index: 1, result: result(1) });
    store.putSession({ clientId: "b", sequence: 1, index: 2, result: { type: "put", index: 2 } });
    store.putSession({ clientId: "a", sequence: 2, index: 3, result: result(3) });
    deepStrictEqual(store.session("a"), {
      clientId: "a",
      sequence: 2,
      index: 3,
      result: result(3),
    });
    strictEqual(store.session("z"), null);
    deepStrictEqual([store.sessionCount(), store.oldestSession()?.clientId], [2, "b"]);
    deepStrictEqual(store.sessions().map((s) => s.clientId), ["b", "a"]);
    store.deleteSession("b");
    deepStrictEqual([store.sessionCount(), store.oldestSession()?.clientId], [1, "a"]);
  });

  test("clear() empties everything", (store) => {
    store.put(bytes(1), bytes(1));
    store.putMemberInfo({ nodeId: 1, p2pNodeId: "p", addresses: [], relayUrl: null });
    store.putSession({ clientId: "a", sequence: 1, index: 1, result: { type: "put", index: 1 } });
    store.setAppliedIndex(4);
    store.setAppliedConfState({ voters: [1], learners: [] });
    store.setClusterId("c");
    store.addInvitedLearner(2);
    store.clear();
    deepStrictEqual(
      [
        store.list(bytes(), { limit: 10 }),
        store.memberInfos(),
        store.sessions(),
        store.appliedIndex(),
        store.appliedConfState(),
        store.clusterId(),
        store.invitedLearners(),
      ],
      [[], [], [], 0, { voters: [], learners: [] }, null, []],
    );
  });

  test("list() refuses a limit below 1", (store) => {
    throws(() => store.list(bytes(), { limit: 0 }), /list limit >= 1/);
  });
}
