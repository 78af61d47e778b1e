import assert from "node:assert/strict";
import { encodeInviteTicket, newToken } from "../bootstrap/invite_ticket.ts";
import { SecretKey } from "../transport/iroh.ts";
import { UsageError } from "../util/errors.ts";
import { JOIN_TICKET_VARIABLE, parseNodeConfig } from "./node_config.ts";

const TICKET = encodeInviteTicket({
  clusterId: "c1",
  expiresAtMs: 1_700_000_000_000,
  token: newToken(),
  members: [{
    nodeId: 1,
    p2pNodeId: SecretKey.generate().public().toString(),
    addresses: ["127.0.0.1:7001"],
    relayUrl: null,
  }],
});

Deno.test("parseNodeConfig() decodes --join TICKET, else BLIXARD_JOIN_TICKET; the flag wins", () => {
  assert.equal(parseNodeConfig(["--id", "2"], {}).joinTicket, null);
  const fromFlag = parseNodeConfig(["--id", "2", "--join", TICKET], {});
  assert.equal(fromFlag.joinTicket?.clusterId, "c1");
  const fromVariable = parseNodeConfig(["--id", "2"], { [JOIN_TICKET_VARIABLE]: TICKET });
  assert.deepEqual(fromVariable.joinTicket, fromFlag.joinTicket);
  const both = parseNodeConfig(["--id", "2", "--join", TICKET], { [JOIN_TICKET_VARIABLE]: "x" });
  assert.equal(both.joinTicket?.clusterId, "c1");
});

Deno.test("a malformed --join ticket is a one-line usage error naming the flag and what is wrong", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--join", "hello"], {}, /^--join: not a valid invite ticket: it does not start with blx1/],
    [["--join", TICKET.slice(0, -2)], {}, /^--join: .*checksum does not match/],
    [[], { [JOIN_TICKET_VARIABLE]: "blx9abc" }, /^BLIXARD_JOIN_TICKET: .*version 9 ticket/],
  ];
  for (const [args, environment, expected] of cases) {
    assert.throws(() => parseNodeConfig(["--id", "2", ...args], environment), (error: Error) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.ok(!error.message.includes("\n"), "one line");
      assert.match(error.message, expected);
      return true;
    });
  }
});
