/**
 * The core says what must be durable before what: `Ready.mustSync`, and the split between
 * `messagesBeforePersist` (a leader's replication, Raft thesis §10.2.1) and `messages`
 * (everything that promises state the Ready persists).
 */

import { deepStrictEqual, strictEqual } from "node:assert/strict";
import {
  acknowledge,
  bootstrappedStorage,
  testCore,
  voteRequest,
} from "../../tests/raft/network.ts";
import type { MemoryStorage } from "../storage/memory_storage.ts";
import type { RaftCore } from "./raft_core.ts";
import type { Message, NodeId, Ready } from "./types.ts";

function newCore(id: NodeId, storage: MemoryStorage): RaftCore {
  return testCore(id, storage, { preVote: false, checkQuorum: false });
}

function handle(core: RaftCore, storage: MemoryStorage): Ready {
  const ready = core.ready();
  storage.persist({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
  core.advance(ready);
  return ready;
}

function types(messages: readonly Message[]): string[] {
  return messages.map((message) => `${message.type}→${message.to}`).sort();
}

/** The leader (node 1) sends node 2 entry 7, not yet committed. */
function appendSeventhEntry(core: RaftCore): void {
  core.step({
    type: "AppendEntries",
    term: 1,
    from: 1,
    to: 2,
    prevLogIndex: 6,
    prevLogTerm: 1,
    entries: [{ type: "normal", term: 1, index: 7, data: new Uint8Array([7]) }],
    leaderCommit: 6,
  });
}

/** Node 1 of three, elected with node 2's vote; its election Ready handled. */
function leader(): { core: RaftCore; storage: MemoryStorage; election: Ready } {
  const storage = bootstrappedStorage([1, 2, 3]);
  const core = newCore(1, storage);
  handle(core, storage);
  core.campaign();
  const campaign = handle(core, storage);
  strictEqual(campaign.mustSync, true, "a candidate's own vote is synced");
  deepStrictEqual(campaign.messagesBeforePersist, [], "RequestVote waits for the vote on disk");
  deepStrictEqual(types(campaign.messages), ["RequestVote→2", "RequestVote→3"]);
  grantVoteFrom2(core);
  const election = handle(core, storage);
  return { core, storage, election };
}

/** Node 2 of three, caught up with its configuration. */
function follower(): { core: RaftCore; storage: MemoryStorage } {
  const storage = bootstrappedStorage([1, 2, 3]);
  const core = newCore(2, storage);
  handle(core, storage);
  return { core, storage };
}

/** Node 2 grants node 1, the candidate, its vote in the current term. */
function grantVoteFrom2(core: RaftCore): void {
  core.step({
    type: "RequestVoteResponse",
    term: core.status().term,
    from: 2,
    to: 1,
    voteGranted: true,
    preVote: false,
  });
}

Deno.test("Ready: a leader's AppendEntries of a Ready that keeps term and vote may leave before the persist, which must sync", () => {
  const { core, storage } = leader();
  for (const from of [2, 3]) acknowledge(core, from, core.status().lastIndex);
  handle(core, storage);
  core.propose(new Uint8Array([1]));
  const ready = handle(core, storage);
  deepStrictEqual([ready.hardState, ready.entries.length, ready.mustSync], [null, 1, true]);
  deepStrictEqual(types(ready.messagesBeforePersist), ["AppendEntries→2", "AppendEntries→3"]);
  deepStrictEqual(ready.messages, []);
});

Deno.test("Ready: a new leader's first AppendEntries may leave early once an earlier Ready made its term and vote durable", () => {
  const { election } = leader();
  strictEqual(election.softState?.role, "leader");
  deepStrictEqual(election.hardState, null);
  // The no-op entry of the new term is still to be synced.
  strictEqual(election.mustSync, true);
  deepStrictEqual(types(election.messagesBeforePersist), ["AppendEntries→2", "AppendEntries→3"]);
});

Deno.test("Ready: a leader's AppendEntries wait when the same Ready persists its new term and vote", () => {
  const storage = bootstrappedStorage([1, 2, 3]);
  const core = newCore(1, storage);
  handle(core, storage);
  core.campaign();
  grantVoteFrom2(core);
  const ready = handle(core, storage);
  deepStrictEqual([ready.softState?.role, ready.hardState?.vote, ready.mustSync], [
    "leader",
    1,
    true,
  ]);
  deepStrictEqual(ready.messagesBeforePersist, []);
  deepStrictEqual(types(ready.messages).filter((type) => type.startsWith("AppendEntries")), [
    "AppendEntries→2",
    "AppendEntries→3",
  ]);
});

Deno.test("Ready: a vote waits for the term and vote to be durable", () => {
  const { core, storage } = follower();
  core.step(voteRequest(3, 2, 2));
  const ready = handle(core, storage);
  deepStrictEqual(ready.hardState, { term: 2, vote: 3, commit: 6 });
  strictEqual(ready.mustSync, true);
  deepStrictEqual(ready.messagesBeforePersist, []);
  deepStrictEqual(types(ready.messages), ["RequestVoteResponse→3"]);
});

Deno.test("Ready: an acknowledgement waits for the entries it acknowledges", () => {
  const { core, storage } = follower();
  appendSeventhEntry(core);
  const ready = handle(core, storage);
  deepStrictEqual([ready.entries.length, ready.mustSync], [1, true]);
  deepStrictEqual(ready.messagesBeforePersist, []);
  deepStrictEqual(types(ready.messages), ["AppendEntriesResponse→1"]);
});

Deno.test("Ready: a Ready that only moves the commit index need not sync", () => {
  const { core, storage } = follower();
  appendSeventhEntry(core);
  handle(core, storage);
  core.step({ type: "Heartbeat", term: 1, from: 1, to: 2, commit: 7, readContext: 0 });
  const ready = handle(core, storage);
  deepStrictEqual(ready.hardState, { term: 1, vote: 0, commit: 7 });
  deepStrictEqual([ready.entries, ready.snapshot, ready.mustSync], [[], null, false]);
  deepStrictEqual(ready.committedEntries.map((entry) => entry.index), [7]);
});
