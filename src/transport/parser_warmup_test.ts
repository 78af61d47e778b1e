import assert from "node:assert/strict";
import { z } from "zod";
import { defineRpc, RpcServer } from "./rpc.ts";
import { parseRaftMessage, warmRaftMessageParser } from "./raft_message_schema.ts";

Deno.test("RpcServer.warm builds the request and response schemas of every registered method", () => {
  const built: string[] = [];
  const method = (name: string) =>
    defineRpc({
      method: name,
      request: () => {
        built.push(`${name} request`);
        return z.object({ n: z.number() });
      },
      response: () => {
        built.push(`${name} response`);
        return z.object({ ok: z.boolean() });
      },
    });
  const server = new RpcServer();
  server.register(method("warm.one"), () => ({ ok: true }));
  server.register(method("warm.two"), () => ({ ok: true }));
  assert.deepEqual(built, [], "nothing is built before the warm-up");
  server.warm();
  assert.deepEqual(built.toSorted(), [
    "warm.one request",
    "warm.one response",
    "warm.two request",
    "warm.two response",
  ]);
});

Deno.test("the Raft message parser's warm-up parses valid samples and leaves it refusing bad messages", () => {
  assert.equal(warmRaftMessageParser(), true, "every sample is a valid message");
  assert.throws(
    () => parseRaftMessage({ type: "HeartbeatResponse", term: 1, from: 0, to: 2, readContext: 0 }),
    /invalid Raft message: from/,
  );
  const message = parseRaftMessage({
    type: "HeartbeatResponse",
    term: 1,
    from: 3,
    to: 2,
    readContext: 0,
  });
  assert.equal(message.from, 3);
});
