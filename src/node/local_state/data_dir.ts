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

import { reasonOf, StartupError } from "../../util/errors.ts";
import { getLogger } from "../../log/logging.ts";

const log = getLogger(["blixard", "node"]);

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
export function openDataDir(path: string): Promise<DataDir> {
  // Synchronous inside: a start does nothing else meanwhile, and each asynchronous file
  // operation was a round trip to Deno's blocking-thread pool, 8 ms for these few on a
  // fresh process (docs/benchmarks.md, "The data dir's lock and the identity key, synchronously").
  return Promise.try(() => openDataDirNow(path));
}

function openDataDirNow(path: string): DataDir {
  ensureDirectory(path);
  const lockPath = `${path}/${LOCK_FILE_NAME}`;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  } catch (error) {
    throw notWritable(path, error);
  }
  if (!file.tryLockSync(true)) {
    const holder = readHolderPid(file);
    file.close();
    throw new StartupError(
      `data dir ${path} is in use by another blixard process (pid ${holder}): stop that node or choose another --data-dir`,
    );
  }
  file.truncateSync(0);
  writeAll(file, new TextEncoder().encode(`${Deno.pid}\n`));
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

function ensureDirectory(path: string): void {
  let info: Deno.FileInfo | null = null;
  try {
    info = Deno.statSync(path);
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
      Deno.mkdirSync(path, { recursive: true, mode: 0o700 });
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
  checkPermissions(path, info);
  checkWritable(path);
}

/**
 * The data dir holds the node's Raft credential (`identity.key`) and its state. A dir that
 * group or others may write is refused: they could replace the key or the database. One
 * they may only read or enter is narrowed to 0700, with a warning: the files inside are
 * 0600 anyway, and refusing would stop nodes whose dir was made with a plain `mkdir`.
 */
function checkPermissions(path: string, info: Deno.FileInfo): void {
  if (info.mode === null || (info.mode & 0o077) === 0) return;
  const mode = formatMode(info.mode);
  if ((info.mode & 0o022) !== 0) {
    throw new StartupError(
      `data dir ${path} is writable by group or others (mode ${mode}): run chmod 700 ${path}`,
    );
  }
  restrictMode(path, 0o700);
  log.warn("data dir {path} was accessible to group or others (mode {mode}): made it 0700", {
    path,
    mode,
  });
}

/**
 * Narrows `path` (a file the node owns) to `mode` when group or others have any access,
 * and returns the mode it had, or `null` when it was already private or does not exist.
 * Synchronous, so that a caller can keep a start free of turns of the event loop.
 */
export function restrictMode(path: string, mode: number): string | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (info.mode === null || (info.mode & 0o077) === 0) return null;
  try {
    Deno.chmodSync(path, mode);
  } catch (error) {
    throw new StartupError(
      `${path} is accessible to group or others (mode ${formatMode(info.mode)}) and cannot be ` +
        `made private (${reasonOf(error)}): run chmod ${mode.toString(8)} ${path} as its owner`,
      { cause: error },
    );
  }
  return formatMode(info.mode);
}

function formatMode(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, "0");
}

/**
 * An existing `LOCK` opens for writing even in a read-only directory, yet the node must
 * create files there (database, identity key): so prove it with a file removed at once.
 */
function checkWritable(path: string): void {
  try {
    const probe = Deno.makeTempFileSync({ dir: path, prefix: ".write-probe-" });
    Deno.removeSync(probe);
  } catch (error) {
    throw notWritable(path, error);
  }
}

function readHolderPid(file: Deno.FsFile): string {
  const buffer = new Uint8Array(LOCK_BYTES_READ_MAX);
  const count = file.readSync(buffer) ?? 0;
  const text = new TextDecoder().decode(buffer.subarray(0, count)).trim();
  return /^[0-9]{1,10}$/.test(text) ? text : "unknown";
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}

function notWritable(path: string, error: unknown): StartupError {
  return new StartupError(
    `data dir ${path} is not writable (${
      reasonOf(error)
    }): give the user running blixard write access or choose another --data-dir`,
    { cause: error },
  );
}
