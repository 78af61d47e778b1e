/**
 * `openDataDir()`: the node's data directory, created if missing and locked so that a
 * second node on the same directory fails at once instead of corrupting the first one's
 * Raft state.
 *
 * The lock is an advisory, exclusive `flock(2)` on `<data-dir>/LOCK`, taken with
 * `Deno.FsFile.tryLock()` (non-blocking; present in Deno 2.9). The file holds the pid of the
 * holder, only so that the error can name it. Why this and not a pid file created with
 * `createNew`: the kernel drops a `flock` when its process dies, however it dies, so a lock
 * is never stale and there is no pid-liveness guess (which pid reuse would fool). Limits:
 * the lock binds only processes that take it (Blixard does); on NFS, Linux emulates `flock`
 * with POSIX byte-range locks, which works only where the server supports locking; the pid
 * shown is in the holder's pid namespace, so it may not be meaningful from another container.
 * The `LOCK` file is kept on release: deleting it would let two processes lock two
 * different inodes under the same name.
 *
 * @module
 */

import { reasonOf, StartupError } from "../cli/errors.ts";

/** The lock file's name inside the data dir. */
export const LOCK_FILE_NAME = "LOCK";
/** Bytes of `LOCK` read to find the holder's pid: a pid is at most 10 digits. */
const LOCK_BYTES_READ_MAX = 32;

/** An open, locked data directory. */
export interface DataDir {
  /** The directory, as given to `openDataDir()`. */
  readonly path: string;
  /** Releases the lock so another process may open the directory. Idempotent. */
  release(): Promise<void>;
}

/**
 * Creates `path` (mode 0700) if missing, checks that it is a writable directory, and locks
 * it. Writes nothing to the directory but `LOCK`.
 *
 * @throws {StartupError} when the path is not a directory, cannot be created or written,
 * or is locked by another process (the message names that process's pid).
 */
export async function openDataDir(path: string): Promise<DataDir> {
  await ensureDirectory(path);
  const lockPath = `${path}/${LOCK_FILE_NAME}`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  } catch (error) {
    throw notWritable(path, error);
  }
  if (!await file.tryLock(true)) {
    const holder = await readHolderPid(file);
    file.close();
    throw new StartupError(
      `data dir ${path} is in use by another blixard process (pid ${holder}): stop that node or choose another --data-dir`,
    );
  }
  await file.truncate(0);
  await writeAll(file, new TextEncoder().encode(`${Deno.pid}\n`));
  let released = false;
  return {
    path,
    release: () => {
      if (!released) {
        released = true;
        // Closing the descriptor drops the flock.
        file.close();
      }
      return Promise.resolve();
    },
  };
}

async function ensureDirectory(path: string): Promise<void> {
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new StartupError(
        `data dir ${path} cannot be read (${reasonOf(error)}): choose another --data-dir`,
        { cause: error },
      );
    }
  }
  if (info === null) {
    try {
      await Deno.mkdir(path, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StartupError(
        `data dir ${path} cannot be created (${reasonOf(error)}): choose another --data-dir`,
        { cause: error },
      );
    }
    return;
  }
  if (!info.isDirectory) {
    throw new StartupError(
      `data dir ${path} is not a directory: choose another --data-dir or move the file away`,
    );
  }
  await checkWritable(path);
}

/**
 * An existing `LOCK` opens for writing even in a read-only directory, yet the node must
 * create files there (database, identity key): so prove it with a file removed at once.
 */
async function checkWritable(path: string): Promise<void> {
  try {
    const probe = await Deno.makeTempFile({ dir: path, prefix: ".write-probe-" });
    await Deno.remove(probe);
  } catch (error) {
    throw notWritable(path, error);
  }
}

async function readHolderPid(file: Deno.FsFile): Promise<string> {
  const buffer = new Uint8Array(LOCK_BYTES_READ_MAX);
  const count = await file.read(buffer) ?? 0;
  const text = new TextDecoder().decode(buffer.subarray(0, count)).trim();
  return /^[0-9]{1,10}$/.test(text) ? text : "unknown";
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

function notWritable(path: string, error: unknown): StartupError {
  return new StartupError(
    `data dir ${path} is not writable (${
      reasonOf(error)
    }): give the user running blixard write access or choose another --data-dir`,
    { cause: error },
  );
}
