import assert from "node:assert/strict";
import {
  CLUSTER_SECRET_BYTES_MAX,
  ClusterSecret,
  ClusterSecretError,
  type ClusterSecretSource,
  loadClusterSecret,
  SecretText,
  withoutTrailingNewline,
} from "./cluster_secret.ts";

const encoder = new TextEncoder();
const SECRET_TEXT = "correct horse battery staple 42";
const MESSAGE = encoder.encode("a message to sign");

/** A temp dir for one test, removed afterwards whatever the test does. */
async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "blixard-secret-test-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `content` to `dir/name` with `mode`, and returns it as a `--cluster-secret-file` source. */
async function secretFile(
  dir: string,
  content: string | Uint8Array,
  options: { name?: string; mode?: number } = {},
): Promise<ClusterSecretSource> {
  const path = `${dir}/${options.name ?? "secret"}`;
  await Deno.writeFile(path, typeof content === "string" ? encoder.encode(content) : content);
  await Deno.chmod(path, options.mode ?? 0o600);
  return { kind: "file", path, origin: "--cluster-secret-file" };
}

function valueSource(text: string): ClusterSecretSource {
  return { kind: "value", text: new SecretText(text), origin: "BLIXARD_CLUSTER_SECRET" };
}

/** Asserts that loading `source` fails with one line matching `pattern` that does not show `secret`. */
async function assertRefused(
  source: ClusterSecretSource,
  pattern: RegExp,
  secret?: string,
): Promise<void> {
  await assert.rejects(loadClusterSecret(source), (error) => {
    assert.ok(error instanceof ClusterSecretError, String(error));
    assert.match(error.message, pattern);
    assert.ok(!/[\r\n]/.test(error.message), "one line");
    if (secret !== undefined) assert.ok(!error.message.includes(secret), error.message);
    return true;
  });
}

Deno.test("loadClusterSecret(): a file with one trailing newline is the same secret as the variable without it", async () => {
  await withTempDir(async (dir) => {
    const fromValue = await loadClusterSecret(valueSource(SECRET_TEXT));
    const mac = await fromValue.sign(MESSAGE);
    for (const ending of ["", "\n", "\r\n"]) {
      const fromFile = await loadClusterSecret(await secretFile(dir, SECRET_TEXT + ending));
      assert.deepStrictEqual(await fromFile.sign(MESSAGE), mac, JSON.stringify(ending));
    }
    // Only one newline is dropped: a second one is part of the secret.
    const twoNewlines = await loadClusterSecret(await secretFile(dir, `${SECRET_TEXT}\n\n`));
    assert.notDeepStrictEqual(await twoNewlines.sign(MESSAGE), mac);
  });
});

Deno.test("loadClusterSecret() refuses a missing, empty, short, oversize or non-regular file, naming the flag and the file", async () => {
  await withTempDir(async (dir) => {
    const short = "fifteen bytes!!";
    await assertRefused(
      { kind: "file", path: `${dir}/missing`, origin: "--cluster-secret-file" },
      new RegExp(`^--cluster-secret-file ${dir}/missing: cannot read it \\(no such file\\): write`),
    );
    await assertRefused(
      await secretFile(dir, "\n", { name: "empty" }),
      new RegExp(`^--cluster-secret-file ${dir}/empty: the file is empty: write a random secret`),
    );
    await assertRefused(
      await secretFile(dir, `${short}\n`, { name: "short" }),
      new RegExp(`^--cluster-secret-file ${dir}/short: the file holds 15 bytes: write`),
      short,
    );
    await assertRefused(
      await secretFile(dir, new Uint8Array(CLUSTER_SECRET_BYTES_MAX + 3), { name: "huge" }),
      /the file holds 4099 bytes, more than a secret's 4096: is it the right file\?/,
    );
    await assertRefused(
      { kind: "file", path: dir, origin: "BLIXARD_CLUSTER_SECRET_FILE" },
      new RegExp(`^BLIXARD_CLUSTER_SECRET_FILE=${dir}: not a regular file`),
    );
  });
});

Deno.test("loadClusterSecret() refuses a file that group or others may access, saying chmod 600", async () => {
  await withTempDir(async (dir) => {
    for (const mode of [0o640, 0o604, 0o620, 0o644]) {
      const source = await secretFile(dir, SECRET_TEXT, { name: `mode${mode.toString(8)}`, mode });
      await assertRefused(
        source,
        new RegExp(
          `group or others may access it \\(mode 0${mode.toString(8)}\\): run chmod 600 on it$`,
        ),
        SECRET_TEXT,
      );
    }
    await loadClusterSecret(
      await secretFile(dir, SECRET_TEXT, { name: "owner-only", mode: 0o400 }),
    );
  });
});

Deno.test("loadClusterSecret() refuses a short BLIXARD_CLUSTER_SECRET without showing it", async () => {
  await assertRefused(
    valueSource("too short"),
    /^BLIXARD_CLUSTER_SECRET holds 9 bytes: set it to a random secret of 16–4096 bytes$/,
    "too short",
  );
  await assertRefused(valueSource(""), /^BLIXARD_CLUSTER_SECRET is empty/);
});

Deno.test("ClusterSecret.verify() accepts its own MAC only, for the same message", async () => {
  const secret = await ClusterSecret.fromBytes(encoder.encode(SECRET_TEXT));
  const other = await ClusterSecret.fromBytes(encoder.encode(`${SECRET_TEXT}!`));
  const mac = await secret.sign(MESSAGE);
  assert.equal(mac.length, 32);
  assert.equal(await secret.verify(MESSAGE, mac), true);
  assert.equal(await other.verify(MESSAGE, mac), false);
  assert.equal(await secret.verify(encoder.encode("another message"), mac), false);
  const flipped = mac.slice();
  flipped[0]! ^= 1;
  assert.equal(await secret.verify(MESSAGE, flipped), false);
  assert.equal(await secret.verify(MESSAGE, mac.subarray(0, 31)), false);
  await assert.rejects(ClusterSecret.fromBytes(new Uint8Array(15)), RangeError);
});

Deno.test("a loaded secret and its text never print or serialise", async () => {
  const text = new SecretText(SECRET_TEXT);
  const secret = await loadClusterSecret(valueSource(SECRET_TEXT));
  for (
    const shown of [
      String(text),
      JSON.stringify({ text }),
      Deno.inspect(text),
      Deno.inspect(secret),
      JSON.stringify(secret),
    ]
  ) {
    assert.ok(!shown.includes(SECRET_TEXT), shown);
  }
  assert.equal(text.reveal(), SECRET_TEXT);
});

Deno.test("withoutTrailingNewline() drops one LF or CRLF and nothing else", () => {
  const bytes = (text: string) => Array.from(withoutTrailingNewline(encoder.encode(text)));
  assert.deepStrictEqual(bytes("ab\n"), Array.from(encoder.encode("ab")));
  assert.deepStrictEqual(bytes("ab\r\n"), Array.from(encoder.encode("ab")));
  assert.deepStrictEqual(bytes("ab\r"), Array.from(encoder.encode("ab\r")));
  assert.deepStrictEqual(bytes("ab\n\n"), Array.from(encoder.encode("ab\n")));
  assert.deepStrictEqual(bytes(""), []);
});
