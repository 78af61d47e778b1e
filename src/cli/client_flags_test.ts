import assert from "node:assert/strict";
import { OPERATION_TIMEOUT_MS_DEFAULT } from "../client/client.ts";
import {
  type ClientFlagName,
  type ClientFlags,
  CONNECT_TIMEOUT_MS_DEFAULT,
  parseClientFlags,
  runClientCommand,
} from "./client_flags.ts";
import { UsageError } from "../util/errors.ts";
import { captureOutput } from "./testing.ts";

const USAGE = "blixard test --peer host:port";
const ALL: ClientFlagName[] = ["peer", "timeout", "json", "force", "id"];

function parse(
  args: string[],
  options: { env?: Record<string, string>; allowed?: ClientFlagName[] } = {},
) {
  return parseClientFlags(args, {
    env: options.env ?? {},
    usage: USAGE,
    allowed: options.allowed ?? ALL,
  });
}

function isOneLineUsageError(message: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof UsageError && message.test(error.message) && !error.message.includes("\n");
}

Deno.test("parseClientFlags() reads every flag and keeps the positionals in order", () => {
  const flags = parse(["a", "--peer", "10.0.0.1:7001", "--json", "b", "--force", "--id", "3"]);
  assert.deepStrictEqual(flags, {
    peer: "10.0.0.1:7001",
    timeoutMs: OPERATION_TIMEOUT_MS_DEFAULT,
    connectTimeoutMs: CONNECT_TIMEOUT_MS_DEFAULT,
    json: true,
    force: true,
    id: 3,
    name: null,
    chunkBytes: null,
    ttl: null,
    uses: null,
    as: null,
    clusterSecret: null,
    dnsServer: null,
    noCache: false,
    positionals: ["a", "b"],
  });
});

Deno.test("parseClientFlags() takes --peer from BLIXARD_PEER, and the flag wins over it", () => {
  const env = { BLIXARD_PEER: "127.0.0.1:7002" };
  assert.equal((parse([], { env }) as { peer: string }).peer, "127.0.0.1:7002");
  assert.equal(
    (parse(["--peer", "127.0.0.1:7003"], { env }) as { peer: string }).peer,
    "127.0.0.1:7003",
  );
  for (const empty of [{}, { BLIXARD_PEER: "" }]) {
    assert.throws(
      () => parse([], { env: empty }),
      isOneLineUsageError(/^--peer is required \(host:port of any member, or BLIXARD_PEER\)/),
    );
  }
});

Deno.test("parseClientFlags() parses --timeout as a duration and refuses anything else", () => {
  const cases: [string, number][] = [["500ms", 500], ["10s", 10_000], ["2m", 120_000], [
    "1h",
    3_600_000,
  ]];
  for (const [text, timeoutMs] of cases) {
    const flags = parse(["--peer", "h:1", "--timeout", text]) as ClientFlags;
    assert.equal(flags.timeoutMs, timeoutMs, text);
    assert.equal(
      flags.connectTimeoutMs,
      timeoutMs,
      "an explicit --timeout also bounds reaching --peer",
    );
  }
  for (const text of ["10", "0s", "-1s", "1.5s", "ten", "", "25h", "999999999h"]) {
    assert.throws(
      () => parse(["--peer", "h:1", `--timeout=${text}`]),
      isOneLineUsageError(new RegExp(`^--timeout ${text}: must be`)),
      text,
    );
  }
});

Deno.test("parseClientFlags() refuses a bad --id, an unknown flag and a flag the command does not take", () => {
  for (const id of ["0", "-1", "x", "1.5", "1e3", "9999999999999999"]) {
    assert.throws(
      () => parse(["--peer", "h:1", `--id=${id}`]),
      isOneLineUsageError(new RegExp(`^--id ${id.replace(".", "\\.")}: must be an integer`)),
      id,
    );
  }
  assert.throws(
    () => parse(["--peer", "h:1", "--bogus"]),
    isOneLineUsageError(/bogus.*; usage: blixard test/),
  );
  assert.throws(
    () => parse(["--peer", "h:1", "--force"], { allowed: ["peer"] }),
    isOneLineUsageError(/^--force: not a flag of this command; usage: blixard test/),
  );
  assert.throws(() => parse(["--peer"]), isOneLineUsageError(/peer/));
});

Deno.test("parseClientFlags() answers help before checking anything else", () => {
  assert.equal(parse(["--help"]), "help");
  assert.equal(parse(["-h", "--id", "zero"]), "help");
});

Deno.test("runClientCommand() checks the command line before connecting: a usage error needs no peer", async () => {
  const output = captureOutput();
  let checked = 0;
  const spec = {
    usage: USAGE,
    allowed: ["peer"] as ClientFlagName[],
    help: "HELP\n",
    check: () => {
      checked++;
      throw new UsageError("KEY is missing");
    },
  };
  // Port 1 at 127.0.0.1: nothing listens, so a connect attempt would fail, not hang.
  await assert.rejects(
    runClientCommand(["--peer", "127.0.0.1:1"], { env: {}, output, spec }, () => {
      throw new Error("the action must not run");
    }),
    (error) => error instanceof UsageError && error.message === "KEY is missing",
  );
  assert.equal(checked, 1);
  assert.equal(
    await runClientCommand(["--help"], { env: {}, output, spec }, () => Promise.resolve(9)),
    0,
  );
  assert.equal(output.out, "HELP\n");
});

Deno.test("runClientCommand() reports a peer it cannot reach on one line with exit code 1", async () => {
  const output = captureOutput();
  const spec = { usage: USAGE, allowed: ["peer", "timeout"] as ClientFlagName[], help: "" };
  const code = await runClientCommand(
    ["--timeout", "300ms"],
    { env: { BLIXARD_PEER: "127.0.0.1:1" }, output, spec },
    () => Promise.resolve(0),
  );
  assert.equal(code, 1);
  assert.match(output.err, /^blixard: cannot reach 127\.0\.0\.1:1: .+\n$/);
  assert.equal(output.err.split("\n").length, 2, "one line");
  assert.equal(output.out, "");
});

Deno.test("parseClientFlags() takes the cluster secret on every command: its file flag, or either variable", () => {
  const fromFlag = parse(["--peer", "h:1", "--cluster-secret-file", "/run/secret"], {
    allowed: ["peer"],
  }) as ClientFlags;
  assert.deepStrictEqual(fromFlag.clusterSecret, {
    kind: "file",
    path: "/run/secret",
    origin: "--cluster-secret-file",
  });
  const secret = "a secret of more than sixteen bytes";
  const fromVariable = parse(["--peer", "h:1"], {
    env: { BLIXARD_CLUSTER_SECRET: secret },
  }) as ClientFlags;
  assert.equal(fromVariable.clusterSecret?.kind, "value");
  assert.ok(!JSON.stringify(fromVariable).includes(secret), "the secret prints redacted");
  assert.throws(
    () =>
      parse(["--peer", "h:1"], {
        env: { BLIXARD_CLUSTER_SECRET: secret, BLIXARD_CLUSTER_SECRET_FILE: "/etc/secret" },
      }),
    isOneLineUsageError(/^BLIXARD_CLUSTER_SECRET_FILE and BLIXARD_CLUSTER_SECRET are both set/),
  );
});

Deno.test("runClientCommand() reports a secret file it cannot read on one line with exit code 1, before connecting", async () => {
  const output = captureOutput();
  const spec = { usage: USAGE, allowed: ["peer"] as ClientFlagName[], help: "" };
  const missing = `${Deno.makeTempDirSync()}/missing-secret`;
  try {
    const code = await runClientCommand(
      ["--peer", "127.0.0.1:1", "--cluster-secret-file", missing],
      { env: {}, output, spec },
      () => Promise.resolve(0),
    );
    assert.equal(code, 1);
    assert.equal(output.err.split("\n").length, 2, "one line");
    assert.ok(
      output.err.startsWith(
        `blixard: --cluster-secret-file ${missing}: cannot read it (no such file)`,
      ),
      output.err,
    );
  } finally {
    await Deno.remove(missing.slice(0, missing.lastIndexOf("/")), { recursive: true });
  }
});
