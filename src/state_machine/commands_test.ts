import { deepStrictEqual, match, ok, throws } from "node:assert/strict";
import fc from "fast-check";
import { commandArbitrary } from "./arbitraries.ts";
import {
  type Command,
  COMMAND_LIMITS,
  decodeCommand,
  encodeCommand,
  InvalidCommandError,
} from "./commands.ts";
import { encodeMessagePack } from "./msgpack_codec.ts";

const key = new TextEncoder().encode("k");

Deno.test("decodeCommand(encodeCommand(command)) gives the command back", () => {
  fc.assert(
    fc.property(commandArbitrary(), (command) => {
      const decoded = decodeCommand(encodeCommand(command));
      deepStrictEqual(decoded, { ok: true, value: command });
    }),
    { numRuns: 500, seed: 20261129 },
  );
});

Deno.test("decodeCommand() returns plain Uint8Arrays that do not share the entry's memory", () => {
  const data = encodeCommand({ type: "put", key, value: new Uint8Array([1, 2]) });
  const decoded = decodeCommand(data);
  ok(decoded.ok && decoded.value.type === "put");
  ok(Object.getPrototypeOf(decoded.value.value) === Uint8Array.prototype);
  deepStrictEqual(Object.keys(data).length, data.length, "decoding added no property to the data");
  data.fill(0);
  deepStrictEqual(decoded.value.value, new Uint8Array([1, 2]));
});

Deno.test("encodeCommand() is canonical: field order and extra properties do not change the bytes", () => {
  const request = { sequence: 2, clientId: "c" };
  const a: Command = { type: "put", key, value: key, request: { clientId: "c", sequence: 2 } };
  const b = { request, value: key, key, type: "put", ignored: 1 } as Command;
  deepStrictEqual(encodeCommand(b), encodeCommand(a));
});

Deno.test("encodeCommand() refuses a command beyond the limits before it is proposed", () => {
  const longKey = new Uint8Array(COMMAND_LIMITS.keyBytesMax + 1);
  throws(() => encodeCommand({ type: "put", key: longKey, value: key }), InvalidCommandError);
  throws(
    () => encodeCommand({ type: "delete", key, request: { clientId: "", sequence: 1 } }),
    /request.clientId/,
  );
  throws(() => encodeCommand({ type: "initCluster", clusterId: "" }), /clusterId/);
});

Deno.test("decodeCommand() reports malformed data with a reason and never throws", () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([0x92, 0x01]), /not MessagePack/],
    [new Uint8Array([0xc1]), /command/],
    [encodeMessagePack({ type: "launch", key }), /command type/],
    [encodeMessagePack({ type: "put", key: "text", value: key }), /key/],
    [encodeMessagePack({ type: "put", key, value: key, extra: 1 }), /extra/],
    [
      encodeMessagePack({ type: "delete", key, request: { clientId: "c", sequence: 0 } }),
      /request.sequence/,
    ],
    [encodeMessagePack({ type: "compareAndSet", key, value: key }), /expected/],
    [encodeMessagePack(42), /command/],
    [new Uint8Array(COMMAND_LIMITS.commandBytesMax + 1), /exceeds/],
  ];
  for (const [bytes, reason] of cases) {
    const decoded = decodeCommand(bytes);
    ok(!decoded.ok, `accepted ${bytes.slice(0, 20)}`);
    match(decoded.error, reason);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const decoded = decodeCommand(bytes);
      ok(decoded.ok || decoded.error.length > 0);
    }),
    { numRuns: 2000, seed: 20261129 },
  );
});
