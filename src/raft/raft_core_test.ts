/**
 * Unit tests of `RaftCore` driven message by message. Multi-node scenarios live in
 * `tests/raft/`, on the in-process test network.
 */

import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { acknowledge, bootstrappedStorage, testCore } from "../../tests/raft/network.ts";
import { MemoryStorage } from "../storage/memory_storage.ts";
import { InvariantViolation } from "../util/assert.ts";
import { type RaftConfig, RaftCore } from "./raft_core.ts";
import type { AppendEntries, Entry, Message, NodeId, Ready } from "./types.ts";

const newCore = testCore;

/** Handles one Ready the way a node must (persist, then advance) and returns it. */
function drain(core: RaftCore, storage: MemoryStorage): Ready {
  const ready = core.ready();
  storage.persist({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
  core.advance(ready);
  return ready;
}

/** The founder's storage as the node bootstraps it: learner, promotion, first command, commit 3. */
function founderStorage(): MemoryStorage {
  const storage = new MemoryStorage();
  storage.persist({
    hardState: { term: 1, vote: 0, commit: 3 },
    snapshot: null,
    entries: [
      {
        type: "membership",
        term: 1,
        index: 1,
        change: { type: "addLearner", nodeId: 1, context: new Uint8Array([9]) },
      },
      { type: "membership", term: 1, index: 2, change: { type: "promoteLearner", nodeId: 1 } },
      { type: "normal", term: 1, index: 3, data: new TextEncoder().encode("init cluster") },
    ],
  });
  return storage;
}

/** A follower (node 2) of a 3-voter configuration, plus its storage. */
function follower(overrides: Partial<RaftConfig> = {}): { core: RaftCore; storage: MemoryStorage } {
  const storage = bootstrappedStorage([1, 2, 3]);
  const core = newCore(2, storage, overrides);
  drain(core, storage);
  return { core, storage };
}

function appendFrom1(term: number, fields: Partial<AppendEntries> = {}): AppendEntries {
  return {
    type: "AppendEntries",
    term,
    from: 1,
    to: 2,
    prevLogIndex: 6,
    prevLogTerm: 1,
    entries: [],
    leaderCommit: 6,
    ...fields,
  };
}

function normalEntry(index: number, term: number): Entry {
  return { type: "normal", index, term, data: new Uint8Array([index]) };
}

function messagesOfType<T extends Message["type"]>(
  ready: Ready,
  type: T,
): Extract<Message, { type: T }>[] {
  return [...ready.messagesBeforePersist, ...ready.messages].filter((
    m,
  ): m is Extract<Message, { type: T }> => m.type === type);
}

/** Makes node 1 of a 3-voter cluster leader by stepping in the votes it asks for. */
function leaderOfThree(
  overrides: Partial<RaftConfig> = {},
): { core: RaftCore; storage: MemoryStorage } {
  const storage = bootstrappedStorage([1, 2, 3]);
  const core = newCore(1, storage, { preVote: false, ...overrides });
  core.campaign();
  const term = core.status().term;
  core.step({
    type: "RequestVoteResponse",
    term,
    from: 2,
    to: 1,
    voteGranted: true,
    preVote: false,
  });
  strictEqual(core.status().role, "leader");
  drain(core, storage);
  return { core, storage };
}

Deno.test("RaftCore from a founder's storage delivers entries 1..3 as committed, then campaign() makes it leader", () => {
  const storage = founderStorage();
  const core = newCore(1, storage);
  const first = drain(core, storage);
  deepStrictEqual(first.committedEntries.map((e) => e.index), [1, 2, 3]);
  deepStrictEqual([first.hardState, first.entries, first.messages], [null, [], []]);
  core.campaign();
  const second = drain(core, storage);
  deepStrictEqual(second.softState, { role: "leader", leaderId: 1 });
  deepStrictEqual(second.hardState, { term: 2, vote: 1, commit: 4 });
  deepStrictEqual(second.entries, [{ type: "normal", term: 2, index: 4, data: new Uint8Array(0) }]);
  deepStrictEqual(second.committedEntries.map((e) => e.index), [4]);
  const result = core.propose(new Uint8Array([1]));
  deepStrictEqual(result, { ok: true, index: 5, term: 2 });
  deepStrictEqual(drain(core, storage).committedEntries.map((e) => e.index), [5]);
  strictEqual(core.hasReady(), false);
});

Deno.test("RaftCore restarted with applied = commit does not deliver entries again", () => {
  const storage = founderStorage();
  const core = newCore(1, storage, { applied: 3 });
  strictEqual(core.hasReady(), false);
  deepStrictEqual([core.status().applied, core.status().commit], [3, 3]);
});

Deno.test("RaftCore on empty storage (a joining node) never campaigns and learns its membership from the log", () => {
  const storage = new MemoryStorage();
  const core = newCore(4, storage);
  for (let i = 0; i < 100; i += 1) core.tick();
  deepStrictEqual([core.status().role, core.hasReady()], ["follower", false]);
  const leaderLog = bootstrappedStorage([1, 2, 3], [4]).entries(1, 8, Infinity);
  core.step({ ...appendFrom1(2, { prevLogIndex: 5, prevLogTerm: 1 }), to: 4 });
  const rejection = messagesOfType(drain(core, storage), "AppendEntriesResponse")[0]!;
  deepStrictEqual([rejection.success, rejection.rejectedIndex, rejection.hintIndex], [false, 5, 0]);
  core.step({
    ...appendFrom1(2, { prevLogIndex: 0, prevLogTerm: 0, entries: leaderLog, leaderCommit: 7 }),
    to: 4,
  });
  const ready = drain(core, storage);
  deepStrictEqual(ready.committedEntries.length, 7);
  deepStrictEqual(core.status().confState, { voters: [1, 2, 3], learners: [4] });
  deepStrictEqual(messagesOfType(ready, "AppendEntriesResponse")[0]!.matchIndex, 7);
  for (let i = 0; i < 100; i += 1) core.tick();
  strictEqual(core.status().role, "follower");
});

Deno.test("RaftCore.propose() on a follower is refused with the known leader id", () => {
  const { core, storage } = follower();
  deepStrictEqual(core.propose(new Uint8Array([1])), {
    ok: false,
    reason: { type: "notLeader", leaderId: 0 },
  });
  core.step(appendFrom1(2));
  drain(core, storage);
  deepStrictEqual(core.propose(new Uint8Array([1])), {
    ok: false,
    reason: { type: "notLeader", leaderId: 1 },
  });
  deepStrictEqual(core.proposeMembership({ type: "removeNode", nodeId: 3 }), {
    ok: false,
    reason: { type: "notLeader", leaderId: 1 },
  });
  deepStrictEqual(core.transferLeadership(3), {
    ok: false,
    reason: { type: "notLeader", leaderId: 1 },
  });
});

Deno.test("RaftCore grants one vote per term, only to a candidate whose log is up to date (Raft §5.2, §5.4.1)", () => {
  const { core, storage } = follower({ checkQuorum: false });
  const vote = (from: NodeId, term: number, lastLogIndex: number, lastLogTerm: number) => {
    core.step({
      type: "RequestVote",
      term,
      from,
      to: 2,
      lastLogIndex,
      lastLogTerm,
      preVote: false,
      leadershipTransfer: false,
    });
    const response = messagesOfType(drain(core, storage), "RequestVoteResponse")[0]!;
    return [response.voteGranted, response.term];
  };
  deepStrictEqual(vote(3, 2, 5, 1), [false, 2], "log behind: index 5 < 6");
  deepStrictEqual(vote(3, 2, 6, 1), [true, 2]);
  deepStrictEqual(vote(1, 2, 6, 1), [false, 2], "already voted for 3 in term 2");
  deepStrictEqual(vote(3, 2, 6, 1), [true, 2], "the same candidate may ask again");
  deepStrictEqual(vote(1, 3, 6, 1), [true, 3], "a new term allows a new vote");
  deepStrictEqual(core.status().vote, 1);
});

Deno.test("RaftCore pre-vote changes neither term nor vote", () => {
  const { core, storage } = follower({ checkQuorum: false });
  core.step({
    type: "RequestVote",
    term: 5,
    from: 3,
    to: 2,
    lastLogIndex: 6,
    lastLogTerm: 1,
    preVote: true,
    leadershipTransfer: false,
  });
  const ready = drain(core, storage);
  deepStrictEqual(messagesOfType(ready, "RequestVoteResponse")[0], {
    type: "RequestVoteResponse",
    term: 5,
    from: 2,
    to: 3,
    voteGranted: true,
    preVote: true,
  });
  deepStrictEqual([core.status().term, core.status().vote, ready.hardState], [1, 0, null]);
});

Deno.test("RaftCore refuses a RequestVote of an older term with its own term, and the candidate steps down to it (Raft §5.1)", () => {
  const { core, storage } = follower({ preVote: false, checkQuorum: false });
  const request = {
    type: "RequestVote",
    to: 2,
    lastLogIndex: 6,
    lastLogTerm: 1,
    preVote: false,
  } as const;
  core.step({ ...request, term: 5, from: 3, leadershipTransfer: false });
  drain(core, storage);
  core.step({ ...request, term: 4, from: 1, leadershipTransfer: false });
  deepStrictEqual(messagesOfType(drain(core, storage), "RequestVoteResponse"), [
    { type: "RequestVoteResponse", term: 5, from: 2, to: 1, voteGranted: false, preVote: false },
  ]);
  deepStrictEqual([core.status().term, core.status().vote], [5, 3]);

  const candidate = follower({ preVote: false, checkQuorum: false });
  candidate.core.campaign();
  deepStrictEqual([candidate.core.status().role, candidate.core.status().term], ["candidate", 2]);
  candidate.core.step({
    type: "RequestVoteResponse",
    term: 5,
    from: 1,
    to: 2,
    voteGranted: false,
    preVote: false,
  });
  deepStrictEqual([candidate.core.status().role, candidate.core.status().term], ["follower", 5]);
});

Deno.test("RaftCore with check-quorum ignores vote requests within the leader lease unless for a transfer", () => {
  const { core, storage } = follower();
  core.step(appendFrom1(1));
  drain(core, storage);
  const request = {
    type: "RequestVote" as const,
    term: 3,
    from: 3,
    to: 2,
    lastLogIndex: 6,
    lastLogTerm: 1,
    preVote: false,
  };
  core.step({ ...request, leadershipTransfer: false });
  const ignored = drain(core, storage);
  deepStrictEqual([ignored.messages, core.status().term], [[], 1]);
  core.step({ ...request, leadershipTransfer: true });
  const granted = messagesOfType(drain(core, storage), "RequestVoteResponse")[0]!;
  deepStrictEqual([granted.voteGranted, core.status().term, core.status().vote], [true, 3, 3]);
});

Deno.test("RaftCore answers a stale leader's AppendEntries with its newer term", () => {
  const { core, storage } = follower();
  core.step(appendFrom1(4));
  drain(core, storage);
  core.step({ ...appendFrom1(3), from: 3 });
  const response = messagesOfType(drain(core, storage), "AppendEntriesResponse")[0]!;
  deepStrictEqual([response.to, response.term, response.success], [3, 4, false]);
  deepStrictEqual([core.status().term, core.status().leaderId], [4, 1]);
});

Deno.test("RaftCore follower rejects a mismatching AppendEntries with a hint that skips the conflicting term", () => {
  const { core, storage } = follower();
  // The follower holds entries 7..9 from a deposed leader of term 2.
  core.step(appendFrom1(2, { entries: [normalEntry(7, 2), normalEntry(8, 2), normalEntry(9, 2)] }));
  drain(core, storage);
  core.step(appendFrom1(3, { prevLogIndex: 12, prevLogTerm: 3 }));
  const reject = messagesOfType(drain(core, storage), "AppendEntriesResponse")[0]!;
  deepStrictEqual([reject.success, reject.rejectedIndex, reject.hintIndex, reject.hintTerm], [
    false,
    12,
    9,
    2,
  ]);
  // A leader whose entry 9 is of term 1: the follower skips back over all of its term 2.
  core.step(appendFrom1(3, { prevLogIndex: 9, prevLogTerm: 1 }));
  const second = messagesOfType(drain(core, storage), "AppendEntriesResponse")[0]!;
  deepStrictEqual([second.rejectedIndex, second.hintIndex, second.hintTerm], [9, 6, 1]);
});

Deno.test("RaftCore follower overwrites a conflicting uncommitted suffix and acknowledges the new last index", () => {
  const { core, storage } = follower();
  core.step(appendFrom1(2, { entries: [normalEntry(7, 2), normalEntry(8, 2), normalEntry(9, 2)] }));
  drain(core, storage);
  core.step(appendFrom1(3, { entries: [normalEntry(7, 2), normalEntry(8, 3)], leaderCommit: 8 }));
  const ready = drain(core, storage);
  deepStrictEqual(ready.entries.map((e) => [e.index, e.term]), [[8, 3]]);
  deepStrictEqual(messagesOfType(ready, "AppendEntriesResponse")[0]!.matchIndex, 8);
  deepStrictEqual([storage.lastIndex(), storage.term(8), core.status().commit], [8, 3, 8]);
});

Deno.test("RaftCore answers an AppendEntries below its commit index with the commit index, keeping its entries", () => {
  const { core, storage } = follower();
  core.step(appendFrom1(2, { entries: [normalEntry(7, 2), normalEntry(8, 2)], leaderCommit: 8 }));
  drain(core, storage);
  core.step(appendFrom1(3, { prevLogIndex: 7, prevLogTerm: 2, entries: [normalEntry(8, 3)] }));
  const response = messagesOfType(drain(core, storage), "AppendEntriesResponse")[0]!;
  deepStrictEqual([response.success, response.matchIndex, storage.term(8)], [true, 8, 2]);
});

Deno.test("RaftCore ignores malformed and misaddressed messages", () => {
  const { core, storage } = follower();
  core.step({ ...appendFrom1(5), to: 3 });
  core.step(appendFrom1(5, { entries: [normalEntry(8, 5)] }));
  core.step(appendFrom1(5, { entries: [normalEntry(7, 6)] }));
  deepStrictEqual([core.hasReady(), core.status().term], [false, 1]);
  strictEqual(drain(core, storage).messages.length, 0);
});

Deno.test("RaftCore follower commits from a heartbeat and echoes its read context", () => {
  const { core, storage } = follower();
  core.step(appendFrom1(2, { entries: [normalEntry(7, 2)], leaderCommit: 6 }));
  drain(core, storage);
  core.step({ type: "Heartbeat", term: 2, from: 1, to: 2, commit: 7, readContext: 42 });
  const ready = drain(core, storage);
  deepStrictEqual(ready.committedEntries.map((e) => e.index), [7]);
  deepStrictEqual(messagesOfType(ready, "HeartbeatResponse")[0]!.readContext, 42);
});

Deno.test("RaftCore election timeouts are randomized in [electionTicks, 2 * electionTicks)", () => {
  const timeouts: number[] = [];
  for (const random of [0, 0.5, 0.999]) {
    const storage = bootstrappedStorage([1, 2, 3]);
    const core = newCore(1, storage, { random: () => random, preVote: false });
    let ticks = 0;
    while (core.status().role === "follower") {
      core.tick();
      ticks += 1;
    }
    timeouts.push(ticks);
  }
  deepStrictEqual(timeouts, [10, 15, 19]);
});

Deno.test("RaftCore refuses a config.random outside [0, 1) and a heartbeat not shorter than the election timeout", () => {
  throws(() => newCore(1, bootstrappedStorage([1]), { random: () => 1 }), InvariantViolation);
  throws(() => newCore(1, bootstrappedStorage([1]), { heartbeatTicks: 10 }), InvariantViolation);
});

Deno.test("RaftCore leader appends an empty no-op entry of its term on election (Raft §8)", () => {
  const { core } = leaderOfThree();
  const status = core.status();
  deepStrictEqual([status.role, status.term, status.lastIndex, status.commit], ["leader", 2, 7, 6]);
  acknowledge(core, 2, 7);
  strictEqual(core.status().commit, 7);
});

Deno.test("RaftCore leader commits an older-term entry only with a current-term entry (Raft §5.4.2)", () => {
  // Node 1 holds entry 7 of term 2 that nobody else has, then wins term 3 and appends its no-op at 8.
  const storage = bootstrappedStorage([1, 2, 3]);
  storage.persist({
    hardState: { term: 2, vote: 1, commit: 6 },
    snapshot: null,
    entries: [normalEntry(7, 2)],
  });
  const core = newCore(1, storage, { preVote: false });
  core.campaign();
  core.step({
    type: "RequestVoteResponse",
    term: 3,
    from: 2,
    to: 1,
    voteGranted: true,
    preVote: false,
  });
  drain(core, storage);
  acknowledge(core, 2, 7);
  drain(core, storage);
  strictEqual(core.status().commit, 6, "entry 7 is on a majority but of term 2");
  acknowledge(core, 2, 8);
  strictEqual(drain(core, storage).hardState?.commit, 8);
});

Deno.test("RaftCore leader batches proposals: one AppendEntries per follower per Ready", () => {
  const { core, storage } = leaderOfThree();
  acknowledge(core, 2, 7);
  acknowledge(core, 3, 7);
  drain(core, storage);
  for (let i = 0; i < 50; i += 1) ok(core.propose(new Uint8Array([i])).ok);
  const appends = messagesOfType(drain(core, storage), "AppendEntries");
  deepStrictEqual(appends.map((m) => [m.to, m.entries.length]), [[2, 50], [3, 50]]);
});

Deno.test("RaftCore leader splits AppendEntries at maxMessageBytes and stops at the inflight window", () => {
  // 24 + 100 bytes per entry: two entries fit in 250 bytes; the window holds 4 messages.
  const { core, storage } = leaderOfThree({ maxMessageBytes: 250 });
  acknowledge(core, 2, 7);
  drain(core, storage);
  for (let i = 0; i < 20; i += 1) ok(core.propose(new Uint8Array(100)).ok);
  const toTwo = messagesOfType(drain(core, storage), "AppendEntries").filter((m) => m.to === 2);
  deepStrictEqual(toTwo.map((m) => m.entries.length), [2, 2, 2, 2]);
  acknowledge(core, 2, 11);
  const more = messagesOfType(drain(core, storage), "AppendEntries").filter((m) => m.to === 2);
  deepStrictEqual(
    more.map((m) => m.entries[0]!.index),
    [16, 18],
    "two slots freed, two more messages",
  );
});

Deno.test("RaftCore leader in probe sends one AppendEntries and waits for its answer", () => {
  const { core, storage } = leaderOfThree();
  drain(core, storage);
  ok(core.propose(new Uint8Array([1])).ok);
  ok(core.propose(new Uint8Array([2])).ok);
  deepStrictEqual(
    messagesOfType(drain(core, storage), "AppendEntries").filter((m) => m.to === 3),
    [],
  );
  core.step({ type: "HeartbeatResponse", term: 2, from: 3, to: 1, readContext: 0 });
  const probes = messagesOfType(drain(core, storage), "AppendEntries").filter((m) => m.to === 3);
  deepStrictEqual(probes.map((m) => [m.prevLogIndex, m.entries.length]), [[6, 3]]);
});

Deno.test("RaftCore leader backtracks a rejecting follower by its hint", () => {
  const { core, storage } = leaderOfThree();
  for (let i = 0; i < 5; i += 1) ok(core.propose(new Uint8Array([i])).ok);
  drain(core, storage);
  core.step({
    type: "AppendEntriesResponse",
    term: 2,
    from: 2,
    to: 1,
    success: false,
    matchIndex: 0,
    rejectedIndex: 6,
    hintIndex: 3,
    hintTerm: 1,
  });
  const retry = messagesOfType(drain(core, storage), "AppendEntries").filter((m) => m.to === 2);
  deepStrictEqual(retry.map((m) => [m.prevLogIndex, m.entries[0]!.index]), [[3, 4]]);
});

Deno.test("RaftCore refuses proposals beyond maxUncommittedBytes and accepts again once they are applied", () => {
  const { core, storage } = leaderOfThree({ maxUncommittedBytes: 300 });
  ok(core.propose(new Uint8Array(100)).ok);
  ok(core.propose(new Uint8Array(100)).ok);
  const refused = core.propose(new Uint8Array(100));
  strictEqual(refused.ok, false);
  strictEqual(!refused.ok && refused.reason.type, "overloaded");
  drain(core, storage);
  acknowledge(core, 2, 9);
  drain(core, storage);
  ok(core.propose(new Uint8Array(100)).ok);
});

Deno.test("RaftCore.ready() twice without advance() is an invariant violation; hasReady() is false meanwhile", () => {
  const { core } = leaderOfThree();
  core.propose(new Uint8Array([1]));
  const ready = core.ready();
  strictEqual(core.hasReady(), false);
  throws(() => core.ready(), InvariantViolation);
  core.advance(ready);
  core.propose(new Uint8Array([2]));
  strictEqual(core.hasReady(), true);
});

Deno.test("a learner answers vote requests: its vote counts only where a candidate has it as a voter", () => {
  // Thesis §4.1: servers answer RPCs without consulting their configuration. A learner may
  // already be a voter in the candidate's log (its promotion not yet replicated to it).
  const storage = bootstrappedStorage([1, 2, 3], [4]);
  const learner = newCore(4, storage, { checkQuorum: false });
  learner.step({
    type: "RequestVote",
    term: 2,
    from: 2,
    to: 4,
    lastLogIndex: 7,
    lastLogTerm: 1,
    preVote: false,
    leadershipTransfer: false,
  });
  const response = messagesOfType(drain(learner, storage), "RequestVoteResponse")[0]!;
  deepStrictEqual([response.voteGranted, learner.status().role], [true, "follower"]);
});

Deno.test("RaftCore entries stepped in between ready() and advance() stay unstable for the next Ready", () => {
  const { core, storage } = follower();
  core.step(appendFrom1(2, { entries: [normalEntry(7, 2)] }));
  const ready = core.ready();
  core.step(appendFrom1(2, { prevLogIndex: 7, prevLogTerm: 2, entries: [normalEntry(8, 2)] }));
  storage.persist({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
  core.advance(ready);
  deepStrictEqual(drain(core, storage).entries.map((e) => e.index), [8]);
  strictEqual(storage.lastIndex(), 8);
});

Deno.test("RaftCore leader with check-quorum steps down after an election timeout without a quorum", () => {
  const { core, storage } = leaderOfThree({ checkQuorum: true });
  for (let i = 0; i < 10; i += 1) {
    core.tick();
    core.step({ type: "HeartbeatResponse", term: 2, from: 2, to: 1, readContext: 0 });
  }
  strictEqual(core.status().role, "leader", "node 2 answered: a quorum with the leader");
  for (let i = 0; i < 20; i += 1) core.tick();
  strictEqual(core.status().role, "follower");
  deepStrictEqual(drain(core, storage).softState, { role: "follower", leaderId: 0 });
});

Deno.test("RaftCore learner never campaigns and a TimeoutNow does not make it campaign", () => {
  const storage = bootstrappedStorage([1, 2], [3]);
  const core = newCore(3, storage);
  for (let i = 0; i < 100; i += 1) core.tick();
  core.step({ type: "TimeoutNow", term: 1, from: 1, to: 3 });
  core.campaign();
  deepStrictEqual([core.status().role, core.status().term], ["follower", 1]);
});

Deno.test("RaftCore candidate ignores votes from non-voters when counting", () => {
  const storage = bootstrappedStorage([1, 2, 3], [4, 5]);
  const core = newCore(1, storage, { preVote: false });
  core.campaign();
  for (const from of [4, 5]) {
    core.step({
      type: "RequestVoteResponse",
      term: 2,
      from,
      to: 1,
      voteGranted: true,
      preVote: false,
    });
  }
  strictEqual(core.status().role, "candidate");
  core.step({
    type: "RequestVoteResponse",
    term: 2,
    from: 3,
    to: 1,
    voteGranted: true,
    preVote: false,
  });
  strictEqual(core.status().role, "leader");
});

Deno.test("RaftCore.status() reports progress only on the leader", () => {
  const { core } = leaderOfThree();
  acknowledge(core, 2, 7);
  const progress = core.status().progress.find((p) => p.nodeId === 2)!;
  deepStrictEqual([progress.matchIndex, progress.nextIndex, progress.state], [7, 8, "replicate"]);
  deepStrictEqual(follower().core.status().progress, []);
});
