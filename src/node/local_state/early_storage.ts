/**
 * The Raft storage of a starting node, opened before the start needs it, and the start's
 * answer to "has this data dir been a member before?".
 *
 * A new node's join creates `blixard.db` before its first entries arrive (a ticket's claim
 * opens it while the leader commits the entry that adds the node; any join opens it before
 * it asks). A node killed -9 in that window leaves a database that holds no Raft state. Such
 * a database is no data dir: the next start claims the ticket again, lets the mDNS
 * formation rule decide again, and searches for its seed early, as a first start does (a
 * restart that knew no member and no seed was stuck, and an mDNS joiner founded a second
 * cluster). Claiming again is safe: the leader answers the same id and key as a re-join,
 * without using the ticket again (`MembershipManager.joinByInvite`).
 *
 * @module
 */

import { DATABASE_FILE_NAME, type SqliteStorage } from "../../storage/sqlite_storage.ts";
import { holdsRaftState, openStorage, removeIfPristine } from "./cluster_state.ts";

/**
 * The storage of one start, from the data dir lock until `handOver()` passes it to
 * `openClusterState`. Until then `abandon()` (a failed start) removes it again while it
 * holds nothing, so that it leaves no trace.
 */
export class EarlyStorage {
  readonly #dataDir: string;
  #storage: SqliteStorage | null = null;
  #handedOver = false;
  #heldRaftState: boolean | null = null;

  /** `dataDir` must be locked already (`openDataDir`). */
  constructor(dataDir: string) {
    this.#dataDir = dataDir;
  }

  /**
   * Whether the data dir held Raft state (a term or an entry) when the start first asked:
   * the answer does not change when this start writes the database. A database that holds
   * none counts as absent; one that cannot be opened counts as present, and
   * `openClusterState` says why it cannot be opened. Opens the storage when the file exists.
   */
  heldRaftState(): boolean {
    if (this.#heldRaftState === null) {
      if (!databaseExists(this.#dataDir)) {
        this.#heldRaftState = false;
      } else {
        this.open();
        this.#heldRaftState = this.#storage === null || holdsRaftState(this.#storage);
      }
    }
    return this.#heldRaftState;
  }

  /** Opens the storage, once; a failure is left for `openClusterState` to report. */
  open(): void {
    if (this.#storage !== null || this.#handedOver) return;
    try {
      this.#storage = openStorage(this.#dataDir);
    } catch {
      // openClusterState opens it again and says why it cannot.
    }
  }

  /** The storage if it was opened, now the caller's; `null` otherwise. */
  handOver(): SqliteStorage | null {
    this.#handedOver = true;
    return this.#storage;
  }

  /**
   * For a start that failed before `handOver()`: closes the storage, and removes it when it
   * holds no Raft state.
   */
  abandon(): void {
    const storage = this.#storage;
    if (storage === null || this.#handedOver) return;
    this.#handedOver = true;
    if (holdsRaftState(storage)) storage.close();
    else removeIfPristine(storage);
  }
}

function databaseExists(dataDir: string): boolean {
  try {
    Deno.statSync(`${dataDir}/${DATABASE_FILE_NAME}`);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
