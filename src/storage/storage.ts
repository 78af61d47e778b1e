/**
 * The write side of Raft storage, shared by `MemoryStorage` (simulation) and
 * `SqliteStorage` (the node). The core reads through `RaftStorage`; the node (or the
 * simulator) writes through this interface while handling a `Ready`.
 *
 * @module
 */

import type { Entry, HardState, RaftStorage, Snapshot } from "../raft/types.ts";

/** What one `Ready` asks to make durable. */
export interface PersistRequest {
  /** `null` leaves the hard state as it is. */
  hardState: HardState | null;
  /** Appended after truncating any existing entries at or after `entries[0].index`. */
  entries: readonly Entry[];
  /** Replaces the whole log when newer than the current snapshot; `null` for none. */
  snapshot: Snapshot | null;
}

/** Durable Raft storage: `RaftStorage` plus the writes the node performs. */
export interface DurableStorage extends RaftStorage {
  /**
   * Makes `request` durable atomically: after a crash either all of it or none of it is
   * visible. Returns only once it is synced to stable storage.
   */
  persist(request: PersistRequest): void;
  /**
   * Records `snapshot` (of the state machine at `snapshot.metadata.index`, which must be
   * applied and in the log) and discards the log entries it covers, keeping the entries
   * after it. Used for log compaction.
   */
  compact(snapshot: Snapshot): void;
}

/** Raised when stored state is damaged: the message says what is wrong and where. */
export class StorageCorruptionError extends Error {
  override name = "StorageCorruptionError";
}

/** SQLite's primary result code for "database or disk is full". */
const SQLITE_FULL = 13;

/**
 * True when `error` is a write refused for want of space (SQLite's `SQLITE_FULL`, or the
 * system's `ENOSPC`): the write did not happen, and the same write may succeed once space
 * is freed. An error at fsync is not one of these (SQLite reports it as an I/O error).
 */
export function isDiskFullError(error: unknown): boolean {
  const code = (error as { errcode?: unknown } | null)?.errcode;
  return (typeof code === "number" && (code & 0xff) === SQLITE_FULL) ||
    /database or disk is full|No space left on device/i.test(String(error));
}
