import assert from "node:assert/strict";
import { StartupError } from "../../util/errors.ts";
import {
  checkSecretFingerprint,
  FINGERPRINT_FILE_NAME,
  readSecretFingerprint,
  recordSecretFingerprint,
  rotateSecretFingerprint,
} from "./secret_fingerprint.ts";

const FINGERPRINT = "a1".repeat(32);
const OTHER_FINGERPRINT = "b2".repeat(32);

async function withDataDir(body: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "blixard-fingerprint-test-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertStartupError(fn: () => void, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof StartupError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("recordSecretFingerprint() writes the fingerprint with mode 0600, and null removes it", () =>
  withDataDir((dir) => {
    recordSecretFingerprint(dir, FINGERPRINT);
    assert.equal(readSecretFingerprint(dir), FINGERPRINT);
    assert.equal(Deno.statSync(`${dir}/${FINGERPRINT_FILE_NAME}`).mode! & 0o777, 0o600);
    recordSecretFingerprint(dir, OTHER_FINGERPRINT);
    assert.equal(readSecretFingerprint(dir), OTHER_FINGERPRINT);
    recordSecretFingerprint(dir, null);
    assert.equal(readSecretFingerprint(dir), null);
    recordSecretFingerprint(dir, null);
    assert.deepEqual(Array.from(Deno.readDirSync(dir)), [], "no temporary file left");
  }));

Deno.test("checkSecretFingerprint() accepts the recorded secret, and records one where none was", () =>
  withDataDir((dir) => {
    checkSecretFingerprint(dir, null);
    assert.equal(readSecretFingerprint(dir), null, "no secret, nothing recorded");
    checkSecretFingerprint(dir, FINGERPRINT);
    assert.equal(readSecretFingerprint(dir), FINGERPRINT, "an older data dir learns it");
    checkSecretFingerprint(dir, FINGERPRINT);
  }));

Deno.test("checkSecretFingerprint() refuses a restart without the secret or with another, naming the data dir", () =>
  withDataDir((dir) => {
    recordSecretFingerprint(dir, FINGERPRINT);
    assertStartupError(
      () => checkSecretFingerprint(dir, null),
      new RegExp(
        `^data dir ${dir} belongs to a cluster with a secret \\(fingerprint a1a1a1a1a1a1…\\) and ` +
          "this node has none: start it with the cluster's --cluster-secret-file",
      ),
    );
    assertStartupError(
      () => checkSecretFingerprint(dir, OTHER_FINGERPRINT),
      new RegExp(
        `^data dir ${dir} belongs to a cluster whose secret has fingerprint a1a1a1a1a1a1…, not ` +
          "this secret's b2b2b2b2b2b2…: start it with that cluster's --cluster-secret-file",
      ),
    );
    assert.equal(readSecretFingerprint(dir), FINGERPRINT, "the record is kept");
  }));

Deno.test("readSecretFingerprint() refuses a damaged record with one line naming the file", () =>
  withDataDir((dir) => {
    Deno.writeTextFileSync(`${dir}/${FINGERPRINT_FILE_NAME}`, "not a fingerprint\n");
    assertStartupError(
      () => readSecretFingerprint(dir),
      new RegExp(`^${dir}/${FINGERPRINT_FILE_NAME} is not a secret fingerprint`),
    );
  }));

Deno.test("rotateSecretFingerprint() records the next secret only over the previous one, and again is a no-op", () =>
  withDataDir((dir) => {
    const NEXT = "c3".repeat(32);
    assertStartupError(
      () => rotateSecretFingerprint(dir, { previous: FINGERPRINT, next: NEXT }),
      new RegExp(`^data dir ${dir} records no cluster secret`),
    );
    recordSecretFingerprint(dir, FINGERPRINT);
    assertStartupError(
      () => rotateSecretFingerprint(dir, { previous: OTHER_FINGERPRINT, next: NEXT }),
      new RegExp(
        `^data dir ${dir} records the secret with fingerprint a1a1a1a1a1a1…, not the ` +
          "--cluster-secret-file's b2b2b2b2b2b2…: pass the secret the node runs with now",
      ),
    );
    assert.equal(readSecretFingerprint(dir), FINGERPRINT);
    rotateSecretFingerprint(dir, { previous: FINGERPRINT, next: NEXT });
    assert.equal(readSecretFingerprint(dir), NEXT);
    rotateSecretFingerprint(dir, { previous: FINGERPRINT, next: NEXT });
    assert.equal(readSecretFingerprint(dir), NEXT);
    checkSecretFingerprint(dir, NEXT);
    assertStartupError(
      () => checkSecretFingerprint(dir, FINGERPRINT),
      /belongs to a cluster whose/,
    );
  }));
