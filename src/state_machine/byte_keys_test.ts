import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import fc from "fast-check";
import { bytesEqual, compareBytes, hasPrefix, keySuccessor, prefixEnd } from "./byte_keys.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

Deno.test("compareBytes() orders by unsigned byte, then shorter first", () => {
  ok(compareBytes(bytes(1, 2), bytes(1, 3)) < 0);
  ok(compareBytes(bytes(0xff), bytes(0x00, 0x00)) > 0);
  ok(compareBytes(bytes(1), bytes(1, 0)) < 0);
  strictEqual(compareBytes(bytes(), bytes()), 0);
  ok(bytesEqual(bytes(7, 8), bytes(7, 8)) && !bytesEqual(bytes(7), bytes(7, 0)));
});

Deno.test("prefixEnd() carries past trailing 0xff bytes and has no end for empty or all-0xff prefixes", () => {
  deepStrictEqual(prefixEnd(bytes(1, 2)), bytes(1, 3));
  deepStrictEqual(prefixEnd(bytes(1, 0xff)), bytes(2));
  deepStrictEqual(prefixEnd(bytes(1, 0xfe, 0xff, 0xff)), bytes(1, 0xff));
  strictEqual(prefixEnd(bytes()), null);
  strictEqual(prefixEnd(bytes(0xff)), null);
  strictEqual(prefixEnd(bytes(0xff, 0xff)), null);
});

Deno.test("keySuccessor() is the smallest key after the given one", () => {
  deepStrictEqual(keySuccessor(bytes(5)), bytes(5, 0));
  deepStrictEqual(keySuccessor(bytes()), bytes(0));
});

const smallBytes = fc.uint8Array({ maxLength: 4 }).map((a) =>
  a.map((b) => [0, 1, 0xfe, 0xff][b % 4]!)
);

Deno.test("a key has the prefix exactly when prefix <= key < prefixEnd(prefix)", () => {
  fc.assert(
    fc.property(smallBytes, smallBytes, (key, prefix) => {
      const end = prefixEnd(prefix);
      const inRange = compareBytes(prefix, key) <= 0 &&
        (end === null || compareBytes(key, end) < 0);
      strictEqual(hasPrefix(key, prefix), inRange);
    }),
    { numRuns: 2000, seed: 20261129 },
  );
});

Deno.test("nothing sorts strictly between a key and its successor", () => {
  fc.assert(
    fc.property(smallBytes, smallBytes, (key, other) => {
      const successor = keySuccessor(key);
      ok(compareBytes(key, successor) < 0);
      ok(!(compareBytes(key, other) < 0 && compareBytes(other, successor) < 0));
    }),
    { numRuns: 2000, seed: 20261129 },
  );
});
