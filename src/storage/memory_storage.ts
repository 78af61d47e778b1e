/**
 * `MemoryStorage`: the in-memory twin of `SqliteStorage`, for the simulator and tests.
 *
 * The disk model: a `persist` outside a transaction, a durable `transaction` and `compact`
 * are sync points; what they accepted is durable. A `transaction({ durable: false })` (a
 * Ready that only moves the commit index, like SQLite with `synchronous=OFF`) is written
 * but not synced: a crash takes its commit index back, until the next sync point makes it
 * durable with everything before it. A simulator models a crash by keeping only
 * `durableImage()` and building the restarted node's storage with
 * `MemoryStorage.fromDurableImage(image)`; a crash "before persist" is simply a `Ready`
 * whose `persist` never ran.
 *
 * @module
 */

import { confStateAfter, emptyConfState } from "../raft/membership.ts";
import {
  type ConfState,
  type Entry,
  entryBytes,
  type HardState,
  type Snapshot,
} from "../raft/types.ts";
import type { DurableStorage, PersistRequest } from "./storage.ts";

/** Everything a `MemoryStorage` holds durably; enough to rebuild it after a simulated crash. */
export interface MemoryStorageImage {
  /** The persisted term, vote and commit index. */
  hardState: HardState;
  /** The latest snapshot; index 0 when the log was never compacted. */
  snapshot: Snapshot;
  /** The entries after `snapshot.metadata.index`, contiguous. */
  entries: Entry[];
}

/** The snapshot of a log that was never compacted. */
function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: emptyConfState() }, data: new Uint8Array() };
}

function copyConfState(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}

function copyImage(image: MemoryStorageImage): MemoryStorageImage {
  return {
    hardState: { ...image.hardState },
    snapshot: {
      metadata: {
        ...image.snapshot.metadata,
        confState: copyConfState(image.snapshot.metadata.confState),
      },
      data: image.snapshot.data,
    },
    // Entries are immutable once created, so sharing them between images is safe.
    entries: image.entries.slice(),
  };
}

/**
 * Raft storage held in memory. The log lives in one array after the snapshot:
 * `entries[i].index === snapshot.metadata.index + 1 + i`.
 */
export class MemoryStorage implements DurableStorage {
  #hardState: HardState;
  /** The hard state as of the last sync point: what a crash keeps. */
  #syncedHardState: HardState;
  #snapshot: Snapshot;
  #entries: Entry[];
  /** Requests of the open transaction, written at its end; `null` outside a transaction. */
  #staged: PersistRequest[] | null = null;

  /** Empty storage (a node that has never run), or a copy of `image`. */
  constructor(image?: MemoryStorageImage) {
    const initial = image === undefined
      ? { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: emptySnapshot(), entries: [] }
      : copyImage(image);
    this.#hardState = initial.hardState;
    this.#syncedHardState = initial.hardState;
    this.#snapshot = initial.snapshot;
    this.#entries = initial.entries;
    this.#checkContiguous(this.#entries, this.firstIndex());
  }

  /** A storage holding exactly what `image` holds: a node restarted after a crash. */
  static fromDurableImage(image: MemoryStorageImage): MemoryStorage {
    return new MemoryStorage(image);
  }

  /** A copy of the durable state, unaffected by later writes to this storage. */
  durableImage(): MemoryStorageImage {
    return copyImage({
      hardState: this.#syncedHardState,
      snapshot: this.#snapshot,
      entries: this.#entries,
    });
  }

  /** The persisted hard state and the configuration after the snapshot plus every membership entry. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return {
      hardState: { ...this.#hardState },
      confState: copyConfState(confStateAfter(this.#snapshot.metadata.confState, this.#entries)),
    };
  }

  /** Entries in `[low, high)`, at least one, then as many as fit in `maxBytes`. */
  entries(low: number, high: number, maxBytes: number): Entry[] {
    if (!(this.firstIndex() <= low && low < high && high <= this.lastIndex() + 1)) {
      throw new RangeError(
        `MemoryStorage.entries(${low}, ${high}): outside the log [${this.firstIndex()}, ${
          this.lastIndex() + 1
        })`,
      );
    }
    const offset = this.firstIndex();
    let end = low + 1;
    let bytes = entryBytes(this.#entries[low - offset]!);
    for (; end < high; end += 1) {
      bytes += entryBytes(this.#entries[end - offset]!);
      if (bytes > maxBytes) break;
    }
    return this.#entries.slice(low - offset, end - offset);
  }

  /** The term at `index`; the snapshot's term at `firstIndex() - 1`; `null` outside the log. */
  term(index: number): number | null {
    const snapshotIndex = this.#snapshot.metadata.index;
    if (index === snapshotIndex) return this.#snapshot.metadata.term;
    const entry = this.#entries[index - snapshotIndex - 1];
    return entry === undefined ? null : entry.term;
  }

  /**
   * The configuration after every entry up to `index` (the snapshot's, then its membership
   * entries up to `index`), as `SqliteStorage.confStateAt` gives it. `index` must be in the log.
   */
  confStateAt(index: number): ConfState {
    const snapshotIndex = this.#snapshot.metadata.index;
    if (index < snapshotIndex || index > this.lastIndex()) {
      throw new RangeError(
        `MemoryStorage.confStateAt(${index}): outside the log [${snapshotIndex}, ${this.lastIndex()}]`,
      );
    }
    const entries = this.#entries.slice(0, index - snapshotIndex);
    return copyConfState(confStateAfter(this.#snapshot.metadata.confState, entries));
  }

  /** The index after the snapshot. */
  firstIndex(): number {
    return this.#snapshot.metadata.index + 1;
  }

  /** The last entry's index, or the snapshot's index when no entries follow it. */
  lastIndex(): number {
    return this.#snapshot.metadata.index + this.#entries.length;
  }

  /** The latest snapshot (index 0 when the log was never compacted). */
  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /**
   * Applies `request` as one step: a newer snapshot replaces the whole log, then entries
   * replace the suffix from their first index, then the hard state is set. Inside a
   * `transaction`, it is written when the transaction ends; outside, at once and synced.
   */
  persist(request: PersistRequest): void {
    if (this.#staged !== null) {
      this.#staged.push(request);
      return;
    }
    this.#write(request);
    this.#syncedHardState = this.#hardState;
  }

  /**
   * Runs `fn` as one transaction: the `persist` requests made inside are written together
   * when it returns, and none of them when it throws. Reads inside `fn` see the state
   * before the transaction. `durable: false` writes without syncing; it may only move the
   * commit index (anything else must be synced before it is relied on), which a crash
   * takes back.
   */
  transaction<T>(fn: () => T, options: { durable: boolean }): T {
    if (this.#staged !== null) {
      throw new RangeError("MemoryStorage.transaction: transactions do not nest");
    }
    const staged: PersistRequest[] = [];
    this.#staged = staged;
    let result: T;
    try {
      result = fn();
    } finally {
      this.#staged = null;
    }
    if (!options.durable) this.#checkCommitOnly(staged);
    for (const request of staged) this.#write(request);
    if (options.durable) this.#syncedHardState = this.#hardState;
    return result;
  }

  #checkCommitOnly(requests: readonly PersistRequest[]): void {
    for (const request of requests) {
      const hardState = request.hardState;
      if (
        request.entries.length > 0 || request.snapshot !== null ||
        (hardState !== null &&
          (hardState.term !== this.#hardState.term || hardState.vote !== this.#hardState.vote))
      ) {
        throw new RangeError(
          "MemoryStorage.transaction: a transaction that is not durable may only move the commit " +
            "index; entries, a snapshot, a term or a vote must be synced",
        );
      }
    }
  }

  #write(request: PersistRequest): void {
    const snapshot = request.snapshot;
    if (snapshot !== null && snapshot.metadata.index > this.#snapshot.metadata.index) {
      this.#snapshot = snapshot;
      this.#entries = [];
    }
    this.#appendEntries(request.entries);
    if (request.hardState !== null) {
      if (request.hardState.commit > this.lastIndex()) {
        throw new RangeError(
          `MemoryStorage.persist: hard state commit ${request.hardState.commit} is beyond the last index ${this.lastIndex()}`,
        );
      }
      this.#hardState = { ...request.hardState };
    }
  }

  /** Records `snapshot` and drops the entries it covers; a snapshot not newer than the current one is ignored. */
  compact(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    if (index <= this.#snapshot.metadata.index) return;
    if (index > this.lastIndex() || this.term(index) !== snapshot.metadata.term) {
      throw new RangeError(
        `MemoryStorage.compact: snapshot at index ${index} term ${snapshot.metadata.term} is not in the log ` +
          `(last index ${this.lastIndex()}, term there ${this.term(index)})`,
      );
    }
    if (index > this.#hardState.commit) {
      throw new RangeError(
        `MemoryStorage.compact: index ${index} is not committed (commit ${this.#hardState.commit})`,
      );
    }
    this.#entries = this.#entries.slice(index - this.#snapshot.metadata.index);
    this.#snapshot = snapshot;
    // A sync point: it makes the commit index of earlier unsynced transactions durable too.
    this.#syncedHardState = this.#hardState;
  }

  #appendEntries(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index < this.firstIndex() || first.index > this.lastIndex() + 1) {
      throw new RangeError(
        `MemoryStorage.persist: entries from ${first.index} leave a gap or overwrite the snapshot ` +
          `(log is [${this.firstIndex()}, ${this.lastIndex()}])`,
      );
    }
    this.#checkContiguous(entries, first.index);
    this.#entries.length = first.index - this.firstIndex();
    for (const entry of entries) this.#entries.push(entry);
  }

  #checkContiguous(entries: readonly Entry[], firstIndex: number): void {
    for (let i = 0; i < entries.length; i += 1) {
      if (entries[i]!.index !== firstIndex + i) {
        throw new RangeError(
          `MemoryStorage: entry ${i} has index ${entries[i]!.index}, expected ${firstIndex + i}`,
        );
      }
    }
  }
}
