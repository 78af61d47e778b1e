import { deepStrictEqual, notDeepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import fc from "fast-check";
import { InvariantViolation } from "../util/assert.ts";
import type { Entry, MembershipChange } from "../raft/types.ts";
import { kvCommandArbitrary } from "./arbitraries.ts";
import { type Command, encodeCommand } from "./commands.ts";
import { KvStateMachine, REVOKED_KEYS_MAX } from "./kv_state_machine.ts";
import { encodeMemberInfo, type MemberInfo } from "./member_info.ts";
import { MemoryStateStore } from "./memory_state_store.ts";
import { StateImageError } from "./state_image.ts";
import { withSqliteStore } from "./store_fixtures.ts";

const text = (value: string) => new TextEncoder().encode(value);
const bytes = (...values: number[]) => new Uint8Array(values);

function info(nodeId: number, port = 7000 + nodeId): MemberInfo {
  return { nodeId, p2pNodeId: `p2p-${nodeId}`, addresses: [`127.0.0.1:${port}`], relayUrl: null };
}

/** Builds a log one entry at a time, indexes from 1. */
class LogBuilder {
  readonly entries: Entry[] = [];
  command(command: Command): Entry {
    return this.data(encodeCommand(command));
  }
  data(data: Uint8Array): Entry {
    return this.#push({ type: "normal", term: 1, index: this.entries.length + 1, data });
  }
  membership(change: MembershipChange): Entry {
    return this.#push({ type: "membership", term: 1, index: this.entries.length + 1, change });
  }
  #push(entry: Entry): Entry {
    this.entries.push(entry);
    return entry;
  }
}

/** A founding node's first entries: itself as learner, promoted, then the cluster id. */
function foundedLog(): LogBuilder {
  const log = new LogBuilder();
  log.membership({ type: "addLearner", nodeId: 1, context: encodeMemberInfo(info(1)) });
  log.membership({ type: "promoteLearner", nodeId: 1 });
  log.command({ type: "initCluster", clusterId: "cluster-a" });
  return log;
}

function machine(options: { sessionsMax?: number } = {}): KvStateMachine {
  return new KvStateMachine(new MemoryStateStore(), options);
}

/** Applies every entry of `log` not applied yet and returns the results. */
function applyAll(sm: KvStateMachine, log: LogBuilder) {
  return log.entries.slice(sm.appliedIndex()).map((entry) => sm.apply(entry));
}

Deno.test("KvStateMachine: put, get and delete report their index and whether the key existed", () => {
  const sm = machine();
  const log = new LogBuilder();
  log.command({ type: "put", key: text("k"), value: text("v1") });
  log.command({ type: "put", key: bytes(), value: bytes() });
  log.command({ type: "delete", key: text("k") });
  log.command({ type: "delete", key: text("k") });
  deepStrictEqual(applyAll(sm, log), [
    { type: "put", index: 1 },
    { type: "put", index: 2 },
    { type: "delete", index: 3, existed: true },
    { type: "delete", index: 4, existed: false },
  ]);
  deepStrictEqual([sm.get(text("k")), sm.get(bytes()), sm.appliedIndex()], [null, bytes(), 4]);
});

Deno.test("KvStateMachine.applyAll() gives the results of applying one at a time, and refuses a gap", () =>
  withSqliteStore(({ store }) => {
    const log = foundedLog();
    for (let i = 0; i < 20; i++) {
      log.command({
        type: "put",
        key: text(`k${i % 3}`),
        value: text(`v${i}`),
        request: { clientId: `c${i % 4}`, sequence: 1 + Math.floor(i / 4) },
      });
    }
    log.command({ type: "delete", key: text("k1") });
    const oneByOne = machine();
    const expected = applyAll(oneByOne, log);
    const batched = new KvStateMachine(store);
    deepStrictEqual(batched.applyAll(log.entries.slice(0, 10)), expected.slice(0, 10));
    deepStrictEqual(batched.applyAll(log.entries.slice(10)), expected.slice(10));
    deepStrictEqual([batched.appliedIndex(), batched.snapshotData()], [
      oneByOne.appliedIndex(),
      oneByOne.snapshotData(),
    ]);
    const gap = new LogBuilder();
    for (let i = 0; i < log.entries.length + 2; i++) {
      gap.command({ type: "put", key: text("x"), value: text("y") });
    }
    throws(() => batched.applyAll(gap.entries.slice(log.entries.length + 1)), InvariantViolation);
    strictEqual(
      batched.appliedIndex(),
      log.entries.length,
      "nothing of a refused batch is applied",
    );
  }));

Deno.test("KvStateMachine: compareAndSet succeeds only on the expected value, null meaning absent", () => {
  const sm = machine();
  const log = new LogBuilder();
  const cas = (expected: Uint8Array | null, value: string) =>
    log.command({ type: "compareAndSet", key: text("k"), expected, value: text(value) });
  cas(text("x"), "no");
  cas(null, "first");
  cas(null, "second");
  cas(text("wrong"), "third");
  cas(text("first"), "");
  cas(null, "empty is present");
  cas(bytes(), "after empty");
  deepStrictEqual(
    applyAll(sm, log).map((r) => r.type === "compareAndSet" && [r.succeeded, r.current]),
    [
      [false, null],
      [true, text("first")],
      [false, text("first")],
      [false, text("first")],
      [true, bytes()],
      [false, bytes()],
      [true, text("after empty")],
    ],
  );
  deepStrictEqual(sm.get(text("k")), text("after empty"));
});

Deno.test("KvStateMachine: a retried command returns the first result and changes nothing", () => {
  const sm = machine();
  const log = new LogBuilder();
  const request = { clientId: "client-1", sequence: 1 };
  log.command({ type: "put", key: text("k"), value: text("mine"), request });
  log.command({ type: "put", key: text("k"), value: text("other") });
  log.command({ type: "put", key: text("k"), value: text("mine"), request });
  log.command({
    type: "compareAndSet",
    key: text("k"),
    expected: text("other"),
    value: text("cas"),
    request: { ...request, sequence: 2 },
  });
  log.command({
    type: "compareAndSet",
    key: text("k"),
    expected: text("other"),
    value: text("cas"),
    request: { ...request, sequence: 2 },
  });
  const results = applyAll(sm, log);
  deepStrictEqual(results[2], { type: "put", index: 1 });
  deepStrictEqual(results[4], results[3]);
  deepStrictEqual(results[3], {
    type: "compareAndSet",
    index: 4,
    succeeded: true,
    current: text("cas"),
  });
  deepStrictEqual(sm.get(text("k")), text("cas"));
});

Deno.test("KvStateMachine: a sequence older than the client's latest is an error, not a re-apply", () => {
  const sm = machine();
  const log = new LogBuilder();
  log.command({
    type: "put",
    key: text("k"),
    value: text("2"),
    request: { clientId: "c", sequence: 2 },
  });
  log.command({
    type: "put",
    key: text("k"),
    value: text("1"),
    request: { clientId: "c", sequence: 1 },
  });
  const results = applyAll(sm, log);
  deepStrictEqual(results[1], {
    type: "error",
    index: 2,
    error: "client c sequence 1 is older than its latest, 2",
  });
  deepStrictEqual(sm.get(text("k")), text("2"));
});

Deno.test("KvStateMachine: sessions beyond sessionsMax are evicted least recently used by log index", () => {
  const sm = machine({ sessionsMax: 2 });
  const log = new LogBuilder();
  const put = (clientId: string, sequence: number, value: string) =>
    log.command({
      type: "put",
      key: text("k"),
      value: text(value),
      request: { clientId, sequence },
    });
  put("a", 1, "a1");
  put("b", 1, "b1");
  put("a", 2, "a2"); // a is now the most recently used, b the least
  put("c", 1, "c1"); // evicts b
  put("a", 2, "a2 retried"); // a's session survived: not applied again
  put("b", 1, "b1 retried"); // b's session was evicted: applied again
  const results = applyAll(sm, log);
  deepStrictEqual(results[4], { type: "put", index: 3 });
  deepStrictEqual(results[5], { type: "put", index: 6 });
  deepStrictEqual(sm.get(text("k")), text("b1 retried"));
});

Deno.test("KvStateMachine: an empty entry is the leader's no-op and only advances the applied index", () => {
  const sm = machine();
  const log = new LogBuilder();
  log.data(new Uint8Array());
  deepStrictEqual(applyAll(sm, log), [{ type: "noop", index: 1 }]);
  strictEqual(sm.appliedIndex(), 1);
});

Deno.test("KvStateMachine: a malformed command is an error result on every store, and changes nothing else", () => {
  const garbage = [
    bytes(0xc1),
    bytes(0x92, 1),
    text("not msgpack at all"),
    text(JSON.stringify({ type: "put", key: "k" })),
  ];
  const results: unknown[] = [];
  const images: Uint8Array[] = [];
  const run = (sm: KvStateMachine) => {
    const log = new LogBuilder();
    for (const data of garbage) log.data(data);
    results.push(applyAll(sm, log));
    images.push(sm.snapshotData());
    deepStrictEqual([sm.appliedIndex(), sm.list(bytes(), { limit: 10 })], [garbage.length, []]);
  };
  run(machine());
  withSqliteStore(({ store }) => run(new KvStateMachine(store)));
  deepStrictEqual(results[0], results[1]);
  deepStrictEqual(images[0], images[1]);
  ok((results[0] as { type: string }[]).every((r) => r.type === "error"));
});

Deno.test("KvStateMachine.apply() refuses an entry that is not the next one", () => {
  const sm = machine();
  const log = new LogBuilder();
  log.data(new Uint8Array());
  const second = log.data(new Uint8Array());
  throws(() => sm.apply(second), InvariantViolation);
  sm.apply(log.entries[0]!);
  throws(() => sm.apply(log.entries[0]!), /applied in order, once/);
});

Deno.test("KvStateMachine: initCluster sets the cluster id once; a different id is refused", () => {
  const sm = machine();
  const log = foundedLog();
  log.command({ type: "initCluster", clusterId: "cluster-a" });
  log.command({ type: "initCluster", clusterId: "cluster-b" });
  const results = applyAll(sm, log);
  deepStrictEqual(results.slice(2), [
    { type: "initCluster", index: 3, clusterId: "cluster-a" },
    { type: "initCluster", index: 4, clusterId: "cluster-a" },
    { type: "error", index: 5, error: "the cluster id is already cluster-a" },
  ]);
  strictEqual(sm.clusterId(), "cluster-a");
});

Deno.test("KvStateMachine: membership entries keep member records, roles and the configuration", () => {
  const sm = machine();
  const log = foundedLog();
  log.membership({ type: "addLearner", nodeId: 2, context: encodeMemberInfo(info(2)) });
  log.membership({ type: "addLearner", nodeId: 3, context: text("garbage") });
  log.command({ type: "setMemberInfo", info: info(2, 9002) });
  log.command({ type: "setMemberInfo", info: info(4) });
  log.command({ type: "setMemberInfo", info: { ...info(2), p2pNodeId: "impostor" } });
  log.membership({ type: "promoteLearner", nodeId: 2 });
  const results = applyAll(sm, log);
  strictEqual((results[4] as { error: string | null }).error?.startsWith("member info"), true);
  deepStrictEqual(results[6], { type: "error", index: 7, error: "node 4 is not a member" });
  deepStrictEqual(results[7], {
    type: "error",
    index: 8,
    error: "node 2 has P2P id p2p-2; setMemberInfo cannot change it",
  });
  deepStrictEqual(sm.members(), [
    { nodeId: 1, role: "voter", info: info(1) },
    { nodeId: 2, role: "voter", info: info(2, 9002) },
    { nodeId: 3, role: "learner", info: null },
  ]);
  log.membership({ type: "removeNode", nodeId: 2 });
  deepStrictEqual(applyAll(sm, log), [{
    type: "membership",
    index: 10,
    confState: { voters: [1], learners: [3] },
    error: null,
  }]);
  deepStrictEqual(sm.members().map((m) => m.nodeId), [1, 3]);
  deepStrictEqual(sm.appliedConfState(), { voters: [1], learners: [3] });
});

Deno.test("KvStateMachine: removing a member revokes its key for good; a snapshot carries the revocation", () => {
  const sm = machine();
  const log = foundedLog();
  log.membership({ type: "addLearner", nodeId: 2, context: encodeMemberInfo(info(2)) });
  log.membership({ type: "addLearner", nodeId: 3, context: text("garbage") });
  applyAll(sm, log);
  strictEqual(sm.isRevoked("p2p-2"), false);
  log.membership({ type: "removeNode", nodeId: 2 });
  log.membership({ type: "removeNode", nodeId: 3 });
  applyAll(sm, log);
  strictEqual(sm.isRevoked("p2p-2"), true);
  deepStrictEqual(sm.revokedKeys(), ["p2p-2"], "a member without a record has no key to revoke");
  strictEqual(sm.isRevoked("p2p-1"), false);

  const restored = machine();
  restored.restore({
    metadata: { index: sm.appliedIndex(), term: 1, confState: sm.appliedConfState() },
    data: sm.snapshotData(),
  });
  strictEqual(restored.isRevoked("p2p-2"), true);
  deepStrictEqual(restored.snapshotData(), sm.snapshotData());
});

Deno.test("KvStateMachine: revoked keys are bounded, the oldest revocation forgotten first", () => {
  const sm = machine();
  const log = foundedLog();
  for (let nodeId = 2; nodeId <= REVOKED_KEYS_MAX + 3; nodeId += 1) {
    log.membership({ type: "addLearner", nodeId, context: encodeMemberInfo(info(nodeId)) });
    log.membership({ type: "removeNode", nodeId });
  }
  applyAll(sm, log);
  const revoked = sm.revokedKeys();
  strictEqual(revoked.length, REVOKED_KEYS_MAX);
  deepStrictEqual([revoked[0], revoked.at(-1)], ["p2p-4", `p2p-${REVOKED_KEYS_MAX + 3}`]);
  strictEqual(sm.isRevoked("p2p-3"), false);
});

Deno.test("KvStateMachine: a membership entry that does not fit the configuration is an invariant violation", () => {
  const sm = machine();
  const log = foundedLog();
  log.membership({ type: "promoteLearner", nodeId: 5 });
  throws(() => applyAll(sm, log), /committed membership changes are valid/);
  strictEqual(sm.appliedIndex(), 3);
});

Deno.test("KvStateMachine.list() returns pairs by key under a binary prefix and bounds the limit", () => {
  const sm = machine();
  const log = new LogBuilder();
  for (const key of [bytes(0xff, 0xff), bytes(0xff), bytes(0xfe, 0xff), bytes(0xff, 0)]) {
    log.command({ type: "put", key, value: key });
  }
  applyAll(sm, log);
  deepStrictEqual(sm.list(bytes(0xff), { limit: 10 }).map((p) => [...p.key]), [[0xff], [0xff, 0], [
    0xff,
    0xff,
  ]]);
  deepStrictEqual(sm.list(bytes(0xff), { limit: 2 }).map((p) => [...p.key]), [[0xff], [0xff, 0]]);
  throws(() => sm.list(bytes(), { limit: 0 }), InvariantViolation);
  throws(() => sm.list(bytes(), { limit: 10_001 }), InvariantViolation);
});

Deno.test("KvStateMachine.list() pages with startAfter: each page starts after the previous one's last key", () => {
  const sm = machine();
  const log = new LogBuilder();
  for (const key of [bytes(1, 1), bytes(1, 2), bytes(1, 3), bytes(2, 1)]) {
    log.command({ type: "put", key, value: key });
  }
  applyAll(sm, log);
  const firstPage = sm.list(bytes(1), { limit: 2 });
  deepStrictEqual(firstPage.map((p) => [...p.key]), [[1, 1], [1, 2]]);
  const secondPage = sm.list(bytes(1), { limit: 2, startAfter: firstPage[1]!.key });
  deepStrictEqual(secondPage.map((p) => [...p.key]), [[1, 3]]);
});

/** A log touching every part of the state: members, revoked keys, cluster id, keys, sessions. */
function richLog(): LogBuilder {
  const log = foundedLog();
  log.membership({ type: "addLearner", nodeId: 2, context: encodeMemberInfo(info(2)) });
  log.membership({ type: "addLearner", nodeId: 3, context: encodeMemberInfo(info(3)) });
  log.membership({ type: "removeNode", nodeId: 3 });
  for (let i = 0; i < 40; i += 1) {
    const key = bytes(i % 7, 0xff, i % 3);
    log.command({
      type: "put",
      key,
      value: text(`v${i}`),
      request: { clientId: `c${i % 5}`, sequence: i + 1 },
    });
    if (i % 6 === 0) log.command({ type: "delete", key: bytes((i + 1) % 7, 0xff, 0) });
    if (i % 9 === 0) {
      log.command({
        type: "compareAndSet",
        key,
        expected: null,
        value: bytes(),
        request: { clientId: "cas", sequence: i + 1 },
      });
    }
  }
  log.data(new Uint8Array());
  return log;
}

Deno.test("KvStateMachine: the same log gives byte-identical snapshot data on Memory and SQLite stores", () => {
  const log = richLog();
  const memory = machine();
  const memoryResults = applyAll(memory, log);
  withSqliteStore(({ store }) => {
    const sqlite = new KvStateMachine(store);
    deepStrictEqual(applyAll(sqlite, log), memoryResults);
    deepStrictEqual(sqlite.snapshotData(), memory.snapshotData());
    deepStrictEqual(sqlite.members(), memory.members());
  });
  const other = machine();
  applyAll(other, log);
  deepStrictEqual(other.snapshotData(), memory.snapshotData());
  log.command({ type: "put", key: text("one more"), value: bytes() });
  applyAll(other, log);
  notDeepStrictEqual(other.snapshotData(), memory.snapshotData());
});

Deno.test("KvStateMachine.restore() rebuilds the whole state, which then goes on like the original", () => {
  const log = richLog();
  const source = machine();
  applyAll(source, log);
  const snapshot = {
    metadata: { index: source.appliedIndex(), term: 1, confState: source.appliedConfState() },
    data: source.snapshotData(),
  };
  for (const c of [0, 1, 2, 3]) {
    log.command({
      type: "put",
      key: text("after"),
      value: text(`${c}`),
      request: { clientId: `c${c}`, sequence: 3 },
    });
  }
  const expected = applyAll(source, log);
  const check = (target: KvStateMachine) => {
    target.restore(snapshot);
    deepStrictEqual([target.appliedIndex(), target.clusterId(), target.members()], [
      snapshot.metadata.index,
      "cluster-a",
      source.members(),
    ]);
    deepStrictEqual(target.snapshotData(), snapshot.data);
    deepStrictEqual(applyAll(target, log), expected);
    deepStrictEqual(target.snapshotData(), source.snapshotData());
  };
  const stale = machine();
  applyAll(stale, foundedLog());
  check(stale);
  withSqliteStore(({ store }) => check(new KvStateMachine(store)));
});

Deno.test("KvStateMachine.restore() refuses data that is not an image, does not match its metadata, or is older than the state", () => {
  const source = machine();
  applyAll(source, foundedLog());
  const metadata = { index: 3, term: 1, confState: { voters: [1], learners: [] } };
  const data = source.snapshotData();
  throws(() => machine().restore({ metadata, data: bytes(0x92, 1) }), StateImageError);
  throws(() => machine().restore({ metadata, data: text("[]") }), StateImageError);
  throws(
    () => machine().restore({ metadata: { ...metadata, index: 4 }, data }),
    /matches its metadata/,
  );
  throws(
    () =>
      machine().restore({
        metadata: { ...metadata, confState: { voters: [2], learners: [] } },
        data,
      }),
    /matches its metadata/,
  );
  const target = machine();
  target.restore({ metadata, data });
  strictEqual(target.clusterId(), "cluster-a");
  const ahead = machine();
  applyAll(ahead, richLog());
  throws(() => ahead.restore({ metadata, data }), /a snapshot never takes the state back/);
  strictEqual(ahead.appliedIndex(), richLog().entries.length);
});

const entryDataArbitrary: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: kvCommandArbitrary().map(encodeCommand) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }) },
);

Deno.test("KvStateMachine: random command sequences give equal results and state on Memory and SQLite stores", () => {
  fc.assert(
    fc.property(fc.array(entryDataArbitrary, { maxLength: 60 }), fc.nat(60), (dataList, cut) => {
      const log = new LogBuilder();
      for (const data of dataList) log.data(data);
      const memory = new KvStateMachine(new MemoryStateStore(), { sessionsMax: 3 });
      const memoryResults = applyAll(memory, log);
      withSqliteStore(({ storage, store }) => {
        const sqlite = new KvStateMachine(store, { sessionsMax: 3 });
        const sqliteResults = storage.transaction(() => applyAll(sqlite, log));
        deepStrictEqual(sqliteResults, memoryResults);
        deepStrictEqual(sqlite.snapshotData(), memory.snapshotData());
        deepStrictEqual(
          sqlite.list(new Uint8Array(), { limit: 100 }),
          memory.list(new Uint8Array(), { limit: 100 }),
        );
      }, { commit: dataList.length });
      // A node that restores a snapshot taken part way and applies the rest ends the same.
      const partial = new KvStateMachine(new MemoryStateStore(), { sessionsMax: 3 });
      const prefix = new LogBuilder();
      for (const entry of log.entries.slice(0, Math.min(cut, log.entries.length))) {
        prefix.entries.push(entry);
      }
      applyAll(partial, prefix);
      const restored = new KvStateMachine(new MemoryStateStore(), { sessionsMax: 3 });
      restored.restore({
        metadata: { index: partial.appliedIndex(), term: 1, confState: partial.appliedConfState() },
        data: partial.snapshotData(),
      });
      applyAll(restored, log);
      deepStrictEqual(restored.snapshotData(), memory.snapshotData());
    }),
    { numRuns: 40, seed: 20261129 },
  );
});
