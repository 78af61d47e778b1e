import assert from "node:assert/strict";
import { StartupError } from "../../util/errors.ts";
import { IDENTITY_FILE_NAME, loadOrCreateIdentity, SECRET_KEY_BYTES } from "./identity.ts";

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "blixard-identity-test-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_BYTES = Uint8Array.from(KEY_HEX.match(/../g)!, (pair) => Number.parseInt(pair, 16));

/** Asserts a one-line StartupError naming the key file, matching `problem`, saying what to do. */
function assertKeyError(keyPath: string, problem: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof StartupError, `expected StartupError, got ${String(error)}`);
    assert.ok(error.message.startsWith(`identity key ${keyPath} `), error.message);
    assert.match(error.message, problem);
    assert.match(error.message, /restore it from a backup, or delete it/);
    assert.ok(!error.message.includes("\n"));
    return true;
  };
}

async function writeKeyFile(dir: string, content: string, mode = 0o600): Promise<string> {
  const keyPath = `${dir}/${IDENTITY_FILE_NAME}`;
  await Deno.writeTextFile(keyPath, content, { mode });
  await Deno.chmod(keyPath, mode);
  return keyPath;
}

Deno.test("loadOrCreateIdentity() creates a 0600 key file of 64 hex characters and a newline", async () => {
  await withTempDir(async (dir) => {
    const identity = await loadOrCreateIdentity(dir);
    assert.equal(identity.created, true);
    assert.equal(identity.secretKey.length, SECRET_KEY_BYTES);
    const keyPath = `${dir}/${IDENTITY_FILE_NAME}`;
    const text = await Deno.readTextFile(keyPath);
    assert.match(text, /^[0-9a-f]{64}\n$/);
    const stored = Uint8Array.from(
      text.match(/[0-9a-f]{2}/g)!,
      (pair) => Number.parseInt(pair, 16),
    );
    assert.deepEqual(stored, identity.secretKey);
    assert.equal((await Deno.stat(keyPath)).mode! & 0o777, 0o600);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, [IDENTITY_FILE_NAME], "no temporary file is left behind");
  });
});

Deno.test("loadOrCreateIdentity() reuses the key on the next start", async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreateIdentity(dir);
    const second = await loadOrCreateIdentity(dir);
    assert.equal(second.created, false);
    assert.deepEqual(second.secretKey, first.secretKey);
  });
});

Deno.test("loadOrCreateIdentity() gives two data dirs different random keys", async () => {
  await withTempDir(async (first) => {
    await withTempDir(async (second) => {
      const a = await loadOrCreateIdentity(first);
      const b = await loadOrCreateIdentity(second);
      assert.notDeepEqual(a.secretKey, b.secretKey);
    });
  });
});

Deno.test("loadOrCreateIdentity() reads upper-case hex and a file without the final newline", async () => {
  await withTempDir(async (dir) => {
    await writeKeyFile(dir, KEY_HEX.toUpperCase());
    const identity = await loadOrCreateIdentity(dir);
    assert.equal(identity.created, false);
    assert.deepEqual(identity.secretKey, KEY_BYTES);
  });
});

Deno.test("loadOrCreateIdentity() replaces a temporary file left by a crash", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/${IDENTITY_FILE_NAME}.tmp`, "0011");
    const identity = await loadOrCreateIdentity(dir);
    assert.equal(identity.created, true);
    assert.match(await Deno.readTextFile(`${dir}/${IDENTITY_FILE_NAME}`), /^[0-9a-f]{64}\n$/);
  });
});

Deno.test("loadOrCreateIdentity() refuses a key of the wrong length and keeps the file", async () => {
  await withTempDir(async (dir) => {
    const keyPath = await writeKeyFile(dir, KEY_HEX.slice(0, 62) + "\n");
    await assert.rejects(
      loadOrCreateIdentity(dir),
      assertKeyError(keyPath, /holds 62 characters, expected 64 hex characters and a newline/),
    );
    assert.equal(await Deno.readTextFile(keyPath), KEY_HEX.slice(0, 62) + "\n");
  });
});

Deno.test("loadOrCreateIdentity() refuses an empty key file", async () => {
  await withTempDir(async (dir) => {
    const keyPath = await writeKeyFile(dir, "");
    await assert.rejects(loadOrCreateIdentity(dir), assertKeyError(keyPath, /holds 0 characters/));
  });
});

Deno.test("loadOrCreateIdentity() refuses a key with a non-hex character and names its position", async () => {
  await withTempDir(async (dir) => {
    const keyPath = await writeKeyFile(dir, KEY_HEX.slice(0, 10) + "g" + KEY_HEX.slice(11) + "\n");
    await assert.rejects(
      loadOrCreateIdentity(dir),
      assertKeyError(keyPath, /has a character that is not hex at position 11/),
    );
  });
});

Deno.test("loadOrCreateIdentity() refuses an oversize file without reading it", async () => {
  await withTempDir(async (dir) => {
    const keyPath = await writeKeyFile(dir, "0".repeat(1_000_000));
    await assert.rejects(
      loadOrCreateIdentity(dir),
      assertKeyError(keyPath, /has 1000000 bytes, expected 65/),
    );
  });
});

Deno.test("loadOrCreateIdentity() refuses a directory where the key file should be", async () => {
  await withTempDir(async (dir) => {
    const keyPath = `${dir}/${IDENTITY_FILE_NAME}`;
    await Deno.mkdir(keyPath);
    await assert.rejects(
      loadOrCreateIdentity(dir),
      assertKeyError(keyPath, /is not a regular file/),
    );
  });
});

Deno.test("loadOrCreateIdentity() refuses an unreadable key file instead of making a new one", async () => {
  await withTempDir(async (dir) => {
    const keyPath = `${dir}/${IDENTITY_FILE_NAME}`;
    // A link to itself cannot be read even by root: it stands for any unreadable file.
    await Deno.symlink(IDENTITY_FILE_NAME, keyPath);
    await assert.rejects(
      loadOrCreateIdentity(dir),
      assertKeyError(keyPath, /cannot be read \(.+\): give the user running blixard read access/),
    );
  });
});

Deno.test("loadOrCreateIdentity() refuses a dangling link instead of creating a key behind it", async () => {
  await withTempDir(async (dir) => {
    const keyPath = `${dir}/${IDENTITY_FILE_NAME}`;
    await Deno.symlink(`${dir}/missing-secrets-mount/key`, keyPath);
    await assert.rejects(loadOrCreateIdentity(dir), assertKeyError(keyPath, /cannot be read/));
    assert.ok((await Deno.lstat(keyPath)).isSymlink, "the link is left as it was");
  });
});

Deno.test("loadOrCreateIdentity() refuses a key file that group or others may access, saying the chmod to run", async () => {
  await withTempDir(async (dir) => {
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
      const keyPath = await writeKeyFile(dir, KEY_HEX + "\n", mode);
      await assert.rejects(loadOrCreateIdentity(dir), (error) => {
        assert.ok(error instanceof StartupError, String(error));
        assert.equal(
          error.message,
          `identity key ${keyPath} is accessible to group or others (mode 0${mode.toString(8)}): ` +
            `run chmod 600 ${keyPath}`,
        );
        return true;
      });
      assert.equal(await Deno.readTextFile(keyPath), KEY_HEX + "\n", "the key is kept");
    }
    await Deno.chmod(`${dir}/${IDENTITY_FILE_NAME}`, 0o400);
    assert.deepEqual((await loadOrCreateIdentity(dir)).secretKey, KEY_BYTES);
  });
});
