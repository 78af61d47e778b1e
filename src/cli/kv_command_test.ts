import assert from "node:assert/strict";
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from "../transport/cluster_rpcs.ts";
import { runCli } from "./cli.ts";
import { captureOutput } from "./testing.ts";

/** `blixard kv …` against 127.0.0.1:1, where nothing listens: a connect would exit 1, not 2. */
async function kv(args: string[], env: Record<string, string> = {}) {
  const output = captureOutput();
  const code = await runCli(["kv", ...args], {
    env: { BLIXARD_PEER: "127.0.0.1:1", ...env },
    output,
  });
  return { code, out: output.out, err: output.err };
}

Deno.test("blixard kv: a wrong number of arguments is a one-line usage error, exit 2, before connecting", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["put", "k"],
      /^blixard: expected KEY and VALUE, got 1 argument\(s\); usage: blixard kv put KEY VALUE/,
    ],
    [["put", "k", "v", "w"], /^blixard: expected KEY and VALUE, got 3 argument\(s\)/],
    [["get"], /^blixard: expected KEY, got 0 argument\(s\); usage: blixard kv get KEY/],
    [
      ["delete", "a", "b"],
      /^blixard: expected KEY, got 2 argument\(s\); usage: blixard kv delete KEY/,
    ],
    [["list", "a", "b"], /^blixard: too many arguments; usage: blixard kv list/],
    [["get", "k", "--json"], /^blixard: --json: not a flag of this command/],
    [["scan"], /^blixard: unknown kv command 'scan'; see 'blixard kv --help'/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await kv(args);
    assert.equal(code, 2, args.join(" "));
    assert.match(err, message, args.join(" "));
    assert.equal(err.split("\n").length, 2, `one line: ${err}`);
    assert.equal(out, "");
  }
});

Deno.test("blixard kv: an empty or oversize KEY, VALUE or PREFIX is a usage error naming its size and limit", async () => {
  const oversizeKey = "k".repeat(KEY_BYTES_MAX + 1);
  // Multi-byte characters: the limits are in UTF-8 bytes, not characters.
  const oversizeValue = "é".repeat(VALUE_BYTES_MAX / 2 + 1);
  const cases: [string[], RegExp][] = [
    [["get", ""], /^blixard: KEY is empty: a key has 1 to 4096 bytes/],
    [["put", "", "v"], /^blixard: KEY is empty/],
    [
      ["get", oversizeKey],
      new RegExp(`^blixard: KEY has ${KEY_BYTES_MAX + 1} bytes; the limit is ${KEY_BYTES_MAX}`),
    ],
    [
      ["put", "k", oversizeValue],
      new RegExp(
        `^blixard: VALUE has ${
          VALUE_BYTES_MAX + 2
        } bytes; the limit is ${VALUE_BYTES_MAX} \\(256 KiB\\)`,
      ),
    ],
    [["list", oversizeKey], new RegExp(`^blixard: PREFIX has ${KEY_BYTES_MAX + 1} bytes`)],
  ];
  for (const [args, message] of cases) {
    const { code, err } = await kv(args);
    assert.equal(code, 2, args[0]);
    assert.match(err, message);
    assert.equal(err.split("\n").length, 2, "one line");
  }
  // At the limits the command line is fine: the command goes on to connect, and fails there.
  const atLimit = await kv([
    "put",
    "k".repeat(KEY_BYTES_MAX),
    "v".repeat(VALUE_BYTES_MAX),
    "--timeout",
    "200ms",
  ]);
  assert.equal(atLimit.code, 1);
  assert.match(atLimit.err, /^blixard: cannot reach 127\.0\.0\.1:1: /);
});

Deno.test("blixard kv: --help prints the help with exit 0; no subcommand prints it on stderr with exit 2", async () => {
  const help = await kv(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage:\n {2}blixard kv put KEY VALUE/);
  assert.deepStrictEqual(await kv(["get", "--help"]), { code: 0, out: help.out, err: "" });
  assert.deepStrictEqual(await kv([]), { code: 2, out: "", err: help.out });
});
