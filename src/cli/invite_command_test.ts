import assert from "node:assert/strict";
import { runCli } from "./cli.ts";
import { formatInvites } from "./cluster_command.ts";
import { captureOutput } from "./testing.ts";

Deno.test("cluster invite and revoke-invite refuse bad --ttl, --uses, --as and hashes before connecting, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["invite", "--ttl", "1d"], /--ttl 1d: must be a duration from 1s to 168h/],
    [["invite", "--ttl", "500ms"], /--ttl 500ms/],
    [["invite", "--ttl", "169h"], /--ttl 169h/],
    [["invite", "--uses", "0"], /--uses 0: must be an integer from 1 to 1000/],
    [["invite", "--uses", "1001"], /--uses 1001/],
    [["invite", "--json"], /--json: not a flag of this command/],
    [["invite", "--as", "observer"], /--as observer: must be voter .* or learner/],
    [["invites", "--as", "learner"], /--as: not a flag of this command/],
    [["revoke-invite"], /give the hash/],
    [["revoke-invite", "abc"], /6 to 64 lowercase hex digits/],
    [["revoke-invite", "ABCDEF12"], /6 to 64 lowercase hex digits/],
  ];
  for (const [args, message] of cases) {
    const output = captureOutput();
    // A port nothing listens on: the check must refuse before anything is sent.
    const all = ["cluster", ...args, "--peer", "127.0.0.1:1"];
    assert.equal(await runCli(all, { env: {}, output }), 2, all.join(" "));
    assert.match(output.err, message, all.join(" "));
    assert.equal(output.err.split("\n").length, 2, `one line: ${output.err}`);
  }
});

Deno.test("formatInvites() lists outstanding tickets only, soonest expiry first", () => {
  const record = (
    digit: string,
    fields: Partial<Parameters<typeof formatInvites>[0]["invites"][0]>,
  ) => ({
    tokenHash: digit.repeat(64),
    role: "voter" as const,
    expiresAtMs: 2_000,
    usesLeft: 1,
    createdBy: "ops@db1",
    createdAtMs: 0,
    state: "active" as const,
    ...fields,
  });
  const text = formatInvites({
    nowMs: 1_000,
    invites: [
      record("a", { expiresAtMs: 9_000, usesLeft: 2, role: "learner" }),
      record("b", {}),
      record("c", { state: "used", usesLeft: 0 }),
      record("d", { state: "revoked" }),
      record("e", { expiresAtMs: 1_000 }),
    ],
  });
  assert.deepEqual(text.trimEnd().split("\n").map((line) => line.split(/ +/)), [
    ["HASH", "EXPIRES", "USES", "LEFT", "ROLE", "CREATED", "BY"],
    ["bbbbbbbbbbbb", "1970-01-01T00:00:02.000Z", "1", "voter", "ops@db1"],
    ["aaaaaaaaaaaa", "1970-01-01T00:00:09.000Z", "2", "learner", "ops@db1"],
  ]);
  assert.equal(formatInvites({ nowMs: 0, invites: [] }), "no outstanding invites\n");
});
