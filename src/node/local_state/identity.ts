/**
 * The node's Iroh secret key in `<data-dir>/identity.key` (DESIGN.md section 3): created
 * on first start, reused after, so that the node's P2P id is stable across restarts.
 *
 * The file holds the 32-byte key as 64 hex characters and a newline, mode 0600. A file
 * that is unreadable or malformed is a `StartupError`, never a reason to make a new key:
 * a new key is a new P2P id, which the cluster would refuse for this node id.
 *
 * @module
 */

import { reasonOf, StartupError } from "../../util/errors.ts";

/** The key file's name inside the data dir. */
export const IDENTITY_FILE_NAME = "identity.key";
/** Length of an Iroh (Ed25519) secret key. */
export const SECRET_KEY_BYTES = 32;
/** A larger file is refused before reading: the key file is 65 bytes. */
const IDENTITY_FILE_BYTES_MAX = 1024;
const WHAT_TO_DO = "restore it from a backup, or delete it to start this node with a new " +
  "P2P identity (the cluster must then remove the old member first)";

/** The node's secret key and how it was obtained. */
export interface Identity {
  /** The 32-byte Iroh secret key. Never log it. */
  secretKey: Uint8Array;
  /** `true` when this call made the key (first start). */
  created: boolean;
}

/**
 * Reads the key from `<dataDirPath>/identity.key`, or creates it there if the file does
 * not exist. Creation writes a temporary file with mode 0600, syncs it and renames it into
 * place, so a crash leaves either no key or a whole one.
 *
 * The caller must hold the data dir's lock (`openDataDir()`): it is what makes the
 * check-then-create free of races with another process.
 *
 * @throws {StartupError} when the file cannot be read or is malformed, or cannot be made.
 */
export function loadOrCreateIdentity(dataDirPath: string): Promise<Identity> {
  // Synchronous inside, as `openDataDir()`: nothing else runs meanwhile, and asynchronous
  // file operations each cost a round trip to Deno's blocking-thread pool.
  return Promise.try(() => loadOrCreateIdentityNow(dataDirPath));
}

function loadOrCreateIdentityNow(dataDirPath: string): Identity {
  const keyPath = `${dataDirPath}/${IDENTITY_FILE_NAME}`;
  if (!pathExists(keyPath)) {
    const secretKey = createKeyFile(dataDirPath, keyPath);
    return { secretKey, created: true };
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(keyPath);
  } catch (error) {
    throw unreadable(keyPath, error);
  }
  if (!info.isFile) throw malformed(keyPath, "is not a regular file");
  // The key is the node's Raft credential: whoever reads it is this member to the others,
  // and whoever may write it could swap it. Refused like the cluster secret's file, before
  // it is read.
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new StartupError(
      `identity key ${keyPath} is accessible to group or others (mode ${mode}): ` +
        `run chmod 600 ${keyPath}`,
    );
  }
  if (info.size > IDENTITY_FILE_BYTES_MAX) {
    throw malformed(keyPath, `has ${info.size} bytes, expected ${SECRET_KEY_BYTES * 2 + 1}`);
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(keyPath);
  } catch (error) {
    throw unreadable(keyPath, error);
  }
  const secretKey = decodeKey(keyPath, text);
  return { secretKey, created: false };
}

/**
 * Whether anything, even a dangling symbolic link, is at `path`. A link to a missing
 * secrets mount must be an error, not a reason to create a new key behind it.
 */
function pathExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw unreadable(path, error);
  }
}

function decodeKey(keyPath: string, text: string): Uint8Array {
  const hex = text.endsWith("\r\n")
    ? text.slice(0, -2)
    : text.endsWith("\n")
    ? text.slice(0, -1)
    : text;
  if (hex.length !== SECRET_KEY_BYTES * 2) {
    throw malformed(
      keyPath,
      `holds ${hex.length} characters, expected ${
        SECRET_KEY_BYTES * 2
      } hex characters and a newline`,
    );
  }
  const badIndex = hex.search(/[^0-9a-fA-F]/);
  if (badIndex >= 0) {
    throw malformed(keyPath, `has a character that is not hex at position ${badIndex + 1}`);
  }
  const key = new Uint8Array(SECRET_KEY_BYTES);
  for (let index = 0; index < SECRET_KEY_BYTES; index += 1) {
    key[index] = Number.parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  }
  return key;
}

function encodeKey(key: Uint8Array): string {
  return Array.from(key, (byte) => byte.toString(16).padStart(2, "0")).join("") + "\n";
}

function createKeyFile(dataDirPath: string, keyPath: string): Uint8Array {
  const key = crypto.getRandomValues(new Uint8Array(SECRET_KEY_BYTES));
  const temporaryPath = `${keyPath}.tmp`;
  try {
    // A temporary file left by a crash is incomplete by definition: start afresh.
    try {
      Deno.removeSync(temporaryPath);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    Deno.writeTextFileSync(temporaryPath, encodeKey(key), { createNew: true, mode: 0o600 });
    syncToDisk(temporaryPath);
    Deno.renameSync(temporaryPath, keyPath);
    syncToDisk(dataDirPath);
  } catch (error) {
    throw new StartupError(
      `identity key ${keyPath} cannot be created (${
        reasonOf(error)
      }): check that the data dir is writable`,
      { cause: error },
    );
  }
  return key;
}

/**
 * fsyncs a file (its content must be on disk before the rename publishes it) or a
 * directory (the rename itself must survive a crash). Linux syncs through a read-only fd.
 */
export function syncToDisk(path: string): void {
  const handle = Deno.openSync(path, { read: true });
  try {
    handle.syncSync();
  } finally {
    handle.close();
  }
}

function unreadable(keyPath: string, error: unknown): StartupError {
  return new StartupError(
    `identity key ${keyPath} cannot be read (${
      reasonOf(error)
    }): give the user running blixard read access, or ${WHAT_TO_DO}`,
    { cause: error },
  );
}

function malformed(keyPath: string, problem: string): StartupError {
  return new StartupError(`identity key ${keyPath} ${problem}: ${WHAT_TO_DO}`);
}
