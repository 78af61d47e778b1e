import assert from "node:assert/strict";
import {
  CLUSTER_SECRET_BYTES_MAX,
  ClusterSecret,
  ClusterSecretError,
  type ClusterSecretSource,
  decodeSecretText,
  EmptyClusterSecretError,
  loadClusterSecret,
  newSecretText,
  SecretText,
  withoutTrailingNewline,
} from "./cluster_secret.ts";

const encoder = new TextEncoder();
/** 32 bytes as 64 hex digits, and the same bytes in base64. */
const SECRET_BYTES = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256);
const SECRET_TEXT = Array.from(SECRET_BYTES, (byte) => byte.toString(16).padStart(2, "0")).join("");
const SECRET_BASE64 = btoa(String.fromCharCode(...SECRET_BYTES));
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
    // Only one newline is dropped: with a second one the text is not a secret.
    await assertRefused(
      await secretFile(dir, `${SECRET_TEXT}\n\n`),
      /is not a cluster secret \(65 characters\)/,
      SECRET_TEXT,
    );
  });
});

Deno.test("loadClusterSecret() refuses a missing, empty, guessable, oversize or non-regular file, naming the flag and the file", async () => {
  await withTempDir(async (dir) => {
    const guessable = "correct horse battery staple 42";
    await assertRefused(
      { kind: "file", path: `${dir}/missing`, origin: "--cluster-secret-file" },
      new RegExp(
        `^--cluster-secret-file ${dir}/missing: cannot read it \\(no such file\\): it must`,
      ),
    );
    await assertRefused(
      await secretFile(dir, "\n", { name: "empty" }),
      new RegExp(`^--cluster-secret-file ${dir}/empty: the file is empty: it must hold 32 random`),
    );
    await assert.rejects(
      loadClusterSecret(await secretFile(dir, "", { name: "empty2" })),
      EmptyClusterSecretError,
    );
    await assertRefused(
      await secretFile(dir, `${guessable}\n`, { name: "guessable" }),
      new RegExp(
        `^--cluster-secret-file ${dir}/guessable: the file is not a cluster secret \\(31 characters\\): ` +
          "it must hold 32 random bytes written as 64 hex digits or 44 base64 characters",
      ),
      guessable,
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

Deno.test("decodeSecretText() takes 32 bytes as 64 hex digits or base64, with or without padding, and nothing else", () => {
  const decode = (text: string) => decodeSecretText(encoder.encode(text));
  assert.deepStrictEqual(decode(SECRET_TEXT), SECRET_BYTES);
  assert.deepStrictEqual(decode(SECRET_TEXT.toUpperCase()), SECRET_BYTES);
  assert.deepStrictEqual(decode(SECRET_BASE64), SECRET_BYTES);
  assert.deepStrictEqual(decode(SECRET_BASE64.replace(/=$/, "")), SECRET_BYTES);
  for (
    const wrong of [
      SECRET_TEXT.slice(2), // 31 bytes
      `${SECRET_TEXT}00`, // 33 bytes
      `${SECRET_TEXT.slice(1)}g`,
      btoa(String.fromCharCode(...SECRET_BYTES.subarray(1))), // 31 bytes in base64
      `${SECRET_BASE64}=`,
      "a passphrase that is long enough but not random at all",
      "",
    ]
  ) {
    assert.equal(decode(wrong), null, wrong);
  }
});

Deno.test("newSecretText() writes 32 fresh random bytes in base64 and a newline, a valid secret", () => {
  const first = newSecretText();
  const second = newSecretText();
  assert.match(first, /^[A-Za-z0-9+/]{43}=\n$/);
  assert.notEqual(first, second);
  assert.equal(decodeSecretText(encoder.encode(first.trimEnd()))?.length, 32);
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

Deno.test("loadClusterSecret() refuses a guessable BLIXARD_CLUSTER_SECRET without showing it", async () => {
  await assertRefused(
    valueSource("too short"),
    /^BLIXARD_CLUSTER_SECRET is not a cluster secret \(9 characters\): set it to 32 random bytes written as 64 hex digits or 44 base64 characters/,
    "too short",
  );
  await assert.rejects(loadClusterSecret(valueSource("")), EmptyClusterSecretError);
});

Deno.test("loadClusterSecret(): the hex and the base64 of the same bytes are the same secret", async () => {
  const fromHex = await loadClusterSecret(valueSource(SECRET_TEXT));
  const fromBase64 = await loadClusterSecret(valueSource(SECRET_BASE64));
  assert.deepStrictEqual(await fromHex.sign(MESSAGE), await fromBase64.sign(MESSAGE));
  assert.equal(await fromHex.fingerprint(), await fromBase64.fingerprint());
});

Deno.test("ClusterSecret.fingerprint() is 64 hex digits that differ between secrets and show neither", async () => {
  const secret = await ClusterSecret.fromBytes(SECRET_BYTES);
  const other = await ClusterSecret.fromBytes(SECRET_BYTES.map((byte) => byte ^ 1));
  const fingerprint = await secret.fingerprint();
  assert.match(fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(await secret.fingerprint(), fingerprint);
  assert.notEqual(await other.fingerprint(), fingerprint);
  assert.notEqual(fingerprint, SECRET_TEXT);
  // Not a MAC any other message could give: the label is its own.
  assert.notDeepStrictEqual(
    Array.from(await secret.sign(encoder.encode("blixard-auth-v1"))),
    fingerprint,
  );
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
