import { deepStrictEqual } from "node:assert/strict";
import { isWellFormedMessage } from "./message_shape.ts";
import type { AppendEntries, Entry } from "./types.ts";

function append(entries: Entry[], overrides: Partial<AppendEntries> = {}): AppendEntries {
  return {
    type: "AppendEntries",
    term: 3,
    from: 2,
    to: 1,
    prevLogIndex: 4,
    prevLogTerm: 2,
    entries,
    leaderCommit: 4,
    ...overrides,
  };
}

function entry(index: number, term: number): Entry {
  return { type: "normal", index, term, data: new Uint8Array() };
}

Deno.test("isWellFormedMessage() accepts a contiguous AppendEntries addressed to this node", () => {
  deepStrictEqual(isWellFormedMessage(append([entry(5, 2), entry(6, 3)]), 1), true);
});

Deno.test("isWellFormedMessage() rejects gaps, terms beyond the message term, and wrong addressing", () => {
  deepStrictEqual(
    [
      isWellFormedMessage(append([entry(6, 2)]), 1),
      isWellFormedMessage(append([entry(5, 4)]), 1),
      isWellFormedMessage(append([entry(5, 3), entry(6, 2)]), 1),
      isWellFormedMessage(append([]), 2),
      isWellFormedMessage(append([], { from: 1 }), 1),
      isWellFormedMessage(append([], { from: 0 }), 1),
      isWellFormedMessage(append([], { prevLogIndex: -1 }), 1),
      isWellFormedMessage(append([], { term: 1.5 }), 1),
    ],
    [false, false, false, false, false, false, false, false],
  );
});
