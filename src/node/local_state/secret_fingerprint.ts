/**
 * The cluster secret's fingerprint in the data dir (DESIGN.md section 8):
 * `<data-dir>/cluster-secret.fingerprint` holds `ClusterSecret.fingerprint()` of the secret
 * the node founded or joined its cluster with, never the secret itself.
 *
 * A restart checks it: a node of a cluster with a secret that comes back without one
 * (`BLIXARD_CLUSTER_SECRET` lost from a unit file) would run without a gate and let anyone
 * in through it; one that comes back with another secret is in the wrong cluster. Both are
 * refused with one line naming the data dir and what to do.
 *
 * A data dir written before fingerprints existed has none: a restart with a secret records
 * it, one without has nothing to check against (as for a cluster without a secret).
 *
 * A node that joined by an invite ticket received the secret itself over the encrypted
 * connection, and keeps it in `<data-dir>/cluster.secret` (mode 0600): it starts with it
 * from then on when no `--cluster-secret-file` is given.
 *
 * @module
 */

import { reasonOf, StartupError } from "../../util/errors.ts";
import { type ClusterSecretSource, secretFileText } from "../../auth/cluster_secret.ts";

/** The fingerprint file's name inside the data dir. */
export const FINGERPRINT_FILE_NAME = "cluster-secret.fingerprint";
/** The file of a secret received with an invite ticket, inside the data dir. */
export const RECEIVED_SECRET_FILE_NAME = "cluster.secret";
/** Hex digits of a fingerprint shown in messages: enough to tell two secrets apart. */
const SHOWN_DIGITS = 12;
/** A fingerprint: 64 lowercase hex digits. */
const FINGERPRINT_PATTERN = /^[0-9a-f]{64}$/;

/** The fingerprint recorded in `dataDir`, or `null` when there is none. */
export function readSecretFingerprint(dataDir: string): string | null {
  const path = `${dataDir}/${FINGERPRINT_FILE_NAME}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new StartupError(`${path} cannot be read (${reasonOf(error)}): check its permissions`, {
      cause: error,
    });
  }
  const fingerprint = text.trim();
  if (!FINGERPRINT_PATTERN.test(fingerprint)) {
    throw new StartupError(
      `${path} is not a secret fingerprint (64 hex digits): restore it from a backup of the ` +
        "data dir, or remove it and restart with the cluster's secret to record it again",
    );
  }
  return fingerprint;
}

/**
 * Records `fingerprint` in `dataDir` (replacing what was there, atomically), or removes
 * the record when `null`: a node that founds or joins a cluster starts a new history.
 */
export function recordSecretFingerprint(dataDir: string, fingerprint: string | null): void {
  const path = `${dataDir}/${FINGERPRINT_FILE_NAME}`;
  try {
    if (fingerprint === null) {
      Deno.removeSync(path);
      return;
    }
    writeOwnerOnly(path, `${fingerprint}\n`);
  } catch (error) {
    if (fingerprint === null && error instanceof Deno.errors.NotFound) return;
    throw new StartupError(`${path} cannot be written (${reasonOf(error)}): check the data dir`, {
      cause: error,
    });
  }
}

/**
 * Keeps the secret `bytes` an invite ticket's join received in `dataDir` (mode 0600,
 * atomically), in the format of `blixard cluster new-secret`.
 */
export function storeReceivedSecret(dataDir: string, bytes: Uint8Array): void {
  const path = `${dataDir}/${RECEIVED_SECRET_FILE_NAME}`;
  try {
    writeOwnerOnly(path, secretFileText(bytes));
  } catch (error) {
    throw new StartupError(`${path} cannot be written (${reasonOf(error)}): check the data dir`, {
      cause: error,
    });
  }
}

/** The secret an invite ticket's join left in `dataDir`, as a source to load, or `null`. */
export function receivedSecretSource(dataDir: string): ClusterSecretSource | null {
  const path = `${dataDir}/${RECEIVED_SECRET_FILE_NAME}`;
  try {
    Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new StartupError(`${path} cannot be read (${reasonOf(error)}): check its permissions`, {
      cause: error,
    });
  }
  return { kind: "file", path, origin: "--data-dir secret" };
}

/** Writes `text` to `path` through a temporary file and a rename, readable by the owner only. */
function writeOwnerOnly(path: string, text: string): void {
  const temporary = `${path}.tmp`;
  Deno.writeTextFileSync(temporary, text, { mode: 0o600 });
  // The mode given at creation is masked by the umask; 0600 is what a secret needs.
  Deno.chmodSync(temporary, 0o600);
  Deno.renameSync(temporary, path);
}

/**
 * Checks, at a restart, that the node's secret (`fingerprint`, `null` without one) is the
 * one its data dir recorded; records it when the data dir has no record yet.
 *
 * @throws {StartupError} naming the data dir and what to do, when they differ.
 */
export function checkSecretFingerprint(dataDir: string, fingerprint: string | null): void {
  const recorded = readSecretFingerprint(dataDir);
  if (recorded === null) {
    if (fingerprint !== null) recordSecretFingerprint(dataDir, fingerprint);
    return;
  }
  if (fingerprint === recorded) return;
  const shown = `${recorded.slice(0, SHOWN_DIGITS)}…`;
  if (fingerprint === null) {
    throw new StartupError(
      `data dir ${dataDir} belongs to a cluster with a secret (fingerprint ${shown}) and this ` +
        "node has none: start it with the cluster's --cluster-secret-file (or " +
        "BLIXARD_CLUSTER_SECRET_FILE, BLIXARD_CLUSTER_SECRET); without it, it would admit anyone",
    );
  }
  throw new StartupError(
    `data dir ${dataDir} belongs to a cluster whose secret has fingerprint ${shown}, not this ` +
      `secret's ${fingerprint.slice(0, SHOWN_DIGITS)}…: start it with that cluster's ` +
      "--cluster-secret-file, or use another --data-dir",
  );
}

/**
 * Rotates the secret of a stopped node's data dir (`blixard cluster rotate-secret`): checks
 * that `previous` is the fingerprint recorded there, then records `next`. Again with the
 * same `next` it does nothing, so a rotation interrupted halfway can simply be run again.
 *
 * @throws {StartupError} naming the data dir and what to do, when `previous` is not the
 * recorded secret or nothing is recorded.
 */
export function rotateSecretFingerprint(
  dataDir: string,
  fingerprints: { previous: string; next: string },
): void {
  const recorded = readSecretFingerprint(dataDir);
  if (recorded === fingerprints.next) return;
  if (recorded === null) {
    throw new StartupError(
      `data dir ${dataDir} records no cluster secret: start the node once with its current ` +
        "secret (which records it), or, if it has none, simply start it with the new one",
    );
  }
  if (recorded !== fingerprints.previous) {
    throw new StartupError(
      `data dir ${dataDir} records the secret with fingerprint ${
        recorded.slice(0, SHOWN_DIGITS)
      }…, ` +
        `not the --cluster-secret-file's ${fingerprints.previous.slice(0, SHOWN_DIGITS)}…: ` +
        "pass the secret the node runs with now",
    );
  }
  recordSecretFingerprint(dataDir, fingerprints.next);
}
