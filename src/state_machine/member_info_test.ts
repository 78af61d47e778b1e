import { deepStrictEqual, match, ok } from "node:assert/strict";
import fc from "fast-check";
import { memberInfoArbitrary } from "./arbitraries.ts";
import { decodeMemberInfo, encodeMemberInfo, type MemberInfo } from "./member_info.ts";
import { encodeMessagePack } from "./msgpack_codec.ts";

const sample: MemberInfo = {
  nodeId: 3,
  p2pNodeId: "k51qzi5uqu5dl",
  addresses: ["127.0.0.1:7003", "[::1]:7003"],
  relayUrl: null,
};

Deno.test("decodeMemberInfo(encodeMemberInfo(info)) gives info back", () => {
  fc.assert(
    fc.property(memberInfoArbitrary(), (info) => {
      deepStrictEqual(decodeMemberInfo(encodeMemberInfo(info)), { ok: true, value: info });
    }),
    { seed: 20261129 },
  );
});

Deno.test("encodeMemberInfo() does not depend on the order of the fields", () => {
  const reordered = {
    relayUrl: null,
    addresses: sample.addresses,
    p2pNodeId: sample.p2pNodeId,
    nodeId: 3,
  };
  deepStrictEqual(encodeMemberInfo(reordered), encodeMemberInfo(sample));
});

Deno.test("decodeMemberInfo() refuses bad records with a reason instead of throwing", () => {
  const cases: [unknown, RegExp][] = [
    [{ ...sample, nodeId: 0 }, /nodeId/],
    [{ ...sample, p2pNodeId: "" }, /p2pNodeId/],
    [{ ...sample, addresses: Array(17).fill("127.0.0.1:1") }, /addresses/],
    [{ ...sample, relayUrl: 5 }, /relayUrl/],
    [{ ...sample, extra: true }, /extra/],
    [[1, 2, 3], /member info/],
  ];
  for (const [value, reason] of cases) {
    const decoded = decodeMemberInfo(encodeMessagePack(value));
    ok(!decoded.ok, JSON.stringify(value));
    match(decoded.error, reason);
  }
  const garbage = decodeMemberInfo(new Uint8Array([0xc1]));
  ok(!garbage.ok);
  const empty = decodeMemberInfo(new Uint8Array());
  ok(!empty.ok && empty.error.startsWith("member info is not MessagePack"), JSON.stringify(empty));
});
