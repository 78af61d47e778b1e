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
