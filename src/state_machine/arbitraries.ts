/**
 * fast-check generators of state machine inputs, shared by the property tests.
 *
 * @module
 */

import fc from "fast-check";
import type { Command, KvCommand } from "./commands.ts";
import type { MemberInfo } from "./member_info.ts";

/** Any valid `MemberInfo`, for nodes 1…`nodeIdMax`. */
export function memberInfoArbitrary(nodeIdMax = 1_000_000): fc.Arbitrary<MemberInfo> {
  return fc.record({
    nodeId: fc.integer({ min: 1, max: nodeIdMax }),
    p2pNodeId: fc.string({ minLength: 1, maxLength: 64 }),
    addresses: fc.array(fc.string({ minLength: 1, maxLength: 30 }), { maxLength: 4 }),
    relayUrl: fc.option(fc.string({ minLength: 1, maxLength: 40 }), { nil: null }),
  }, { noNullPrototype: true });
}

/**
 * Key/value commands over a small key space (so that commands collide), with or without a
 * client request from a few clients, including binary and empty keys and values.
 */
export function kvCommandArbitrary(): fc.Arbitrary<KvCommand> {
  const key = fc.constantFrom(
    new Uint8Array(),
    new Uint8Array([0]),
    new Uint8Array([0xff]),
    new Uint8Array([0xff, 0xff]),
    new Uint8Array([1, 0xff]),
    new Uint8Array([2]),
    new TextEncoder().encode("a"),
    new TextEncoder().encode("ab"),
  );
  const value = fc.uint8Array({ maxLength: 3 });
  // Left out by `requiredKeys` when absent, never present as `undefined`.
  const request = fc.record({
    clientId: fc.constantFrom("c1", "c2", "c3", "c4"),
    sequence: fc.integer({ min: 1, max: 6 }),
  }, { noNullPrototype: true });
  return fc.oneof(
    fc.record({ type: fc.constant("put" as const), key, value, request }, {
      requiredKeys: ["type", "key", "value"],
      noNullPrototype: true,
    }),
    fc.record({ type: fc.constant("delete" as const), key, request }, {
      requiredKeys: ["type", "key"],
      noNullPrototype: true,
    }),
    fc.record(
      {
        type: fc.constant("compareAndSet" as const),
        key,
        expected: fc.option(value, { nil: null }),
        value,
        request,
      },
      { requiredKeys: ["type", "key", "expected", "value"], noNullPrototype: true },
    ),
  );
}

/** Any valid command. */
export function commandArbitrary(): fc.Arbitrary<Command> {
  return fc.oneof(
    kvCommandArbitrary(),
    fc.record({
      type: fc.constant("initCluster" as const),
      clusterId: fc.string({ minLength: 1, maxLength: 40 }),
    }, { noNullPrototype: true }),
    fc.record({ type: fc.constant("setMemberInfo" as const), info: memberInfoArbitrary() }, {
      noNullPrototype: true,
    }),
  );
}
