import assert from "node:assert/strict";
import fc from "fast-check";
import { pack, unpack } from "msgpackr";
import type { Message } from "../raft/types.ts";
import { parseRaftMessage, RaftMessageError } from "./raft_message_schema.ts";

const header = { term: 3, from: 1, to: 2 };

const validMessages: Message[] = [
  {
    type: "RequestVote",
    ...header,
    lastLogIndex: 7,
    lastLogTerm: 2,
    preVote: true,
    leadershipTransfer: false,
  },
  { type: "RequestVoteResponse", ...header, voteGranted: true, preVote: false },
  {
    type: "AppendEntries",
    ...header,
    prevLogIndex: 4,
    prevLogTerm: 2,
    leaderCommit: 4,
    entries: [
      { type: "normal", term: 3, index: 5, data: new Uint8Array([1, 2, 3]) },
      { type: "normal", term: 3, index: 6, data: new Uint8Array() },
      {
        type: "membership",
        term: 3,
        index: 7,
        change: { type: "addLearner", nodeId: 4, context: new Uint8Array([9]) },
      },
      { type: "membership", term: 3, index: 8, change: { type: "removeNode", nodeId: 4 } },
    ],
  },
  {
    type: "AppendEntriesResponse",
    ...header,
    success: false,
    matchIndex: 0,
    rejectedIndex: 4,
    hintIndex: 3,
    hintTerm: 1,
  },
  { type: "Heartbeat", ...header, commit: 9, readContext: 0 },
  { type: "HeartbeatResponse", ...header, readContext: 12 },
  {
    type: "InstallSnapshot",
    ...header,
    snapshot: {
      metadata: { index: 10, term: 2, confState: { voters: [1, 2], learners: [3] } },
      data: new Uint8Array([7, 7]),
    },
  },
  { type: "TimeoutNow", ...header },
  { type: "ReadIndexRequest", ...header, requestId: 42 },
  { type: "ReadIndexResponse", ...header, requestId: 42, index: 9 },
];

Deno.test("parseRaftMessage() accepts every message type after a msgpack round trip", () => {
  for (const message of validMessages) {
    const decoded = parseRaftMessage(unpack(pack(message)));
    assert.equal(decoded.type, message.type);
    assert.deepEqual(plain(decoded), plain(message));
  }
});

/** msgpack gives binary back as a Buffer; compare bytes, not classes. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, bytesAsArrays));
}

function bytesAsArrays(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (
    value !== null && typeof value === "object" && (value as { type?: unknown }).type === "Buffer"
  ) {
    return (value as { data: number[] }).data;
  }
  return value;
}

Deno.test("parseRaftMessage() names the field that is out of range or of the wrong type", () => {
  const cases: [unknown, RegExp][] = [
    [{ ...validMessages[0], term: -1 }, /term/],
    [{ ...validMessages[0], from: 0 }, /from/],
    [{ ...validMessages[0], lastLogIndex: 1.5 }, /lastLogIndex/],
    [{ ...validMessages[1], voteGranted: "yes" }, /voteGranted/],
    [
      { ...validMessages[2], entries: [{ type: "normal", term: 1, index: 1, data: "text" }] },
      /entries\.0\.data/,
    ],
    [{ ...validMessages[2], entries: [{ type: "bogus", term: 1, index: 1 }] }, /entries\.0/],
    [{ ...validMessages[4], extra: 1 }, /message|extra/],
    [{ type: "Gossip", ...header }, /type/],
    [null, /message/],
  ];
  for (const [value, field] of cases) {
    assert.throws(() => parseRaftMessage(value), (error: unknown) => {
      assert.ok(error instanceof RaftMessageError);
      assert.match(error.message, field);
      return true;
    });
  }
});

Deno.test("parseRaftMessage() never throws anything but RaftMessageError on arbitrary input", () => {
  fc.assert(
    fc.property(fc.anything({ withTypedArray: true }), (value) => {
      try {
        parseRaftMessage(value);
      } catch (error) {
        if (!(error instanceof RaftMessageError)) throw error;
      }
    }),
    { numRuns: 500 },
  );
});
