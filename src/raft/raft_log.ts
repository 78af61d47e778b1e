/**
 * `RaftLog`: the node's whole log as the core sees it, durable entries in storage plus
 * unstable entries not yet persisted, with the commit index and the applied index.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { type Entry, entryBytes, type RaftStorage, type Snapshot } from "./types.ts";
import { UnstableLog } from "./unstable_log.ts";

/** A log index and the term of the entry there. */
export interface IndexTerm {
  index: number;
  term: number;
}

/** Options of `RaftLog`. */
export interface RaftLogOptions {
  /** The commit index from the persisted hard state. */
  committed: number;
  /** The last index the state machine has applied. */
  applied: number;
  /** Limit on the bytes of `committedEntries` in one `Ready` (always at least one entry). */
  maxCommittedBytesPerReady: number;
}

/** Sums `entryBytes` over `entries`. */
function totalBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entryBytes(entry);
  return bytes;
}

/**
 * The log: `storage` holds `[firstIndex, offset)`, `unstable` holds `[offset, lastIndex]`.
 * Invariant: `firstIndex() - 1 <= applied <= committed <= lastIndex()`.
 */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: UnstableLog;
  /** Highest index known to be committed. Invariant: never decreases. */
  committed: number;
  /** Highest index handed to the state machine and acknowledged by `advance`. */
  applied: number;
  readonly #maxCommittedBytesPerReady: number;

  /** A log over `storage`, with the commit and applied index it had before a restart. */
  constructor(storage: RaftStorage, options: RaftLogOptions) {
    this.storage = storage;
    this.unstable = new UnstableLog(storage.lastIndex() + 1);
    this.committed = options.committed;
    this.applied = options.applied;
    this.#maxCommittedBytesPerReady = options.maxCommittedBytesPerReady;
    assert(
      this.firstIndex() - 1 <= this.applied && this.applied <= this.committed &&
        this.committed <= this.lastIndex(),
      "firstIndex - 1 <= applied <= committed <= lastIndex",
      {
        detail: () =>
          `first index ${this.firstIndex()}, applied ${this.applied}, committed ${this.committed}, ` +
          `last index ${this.lastIndex()}: the state machine must be at least at the snapshot and at most at the commit index`,
      },
    );
  }

  /** Index of the first entry still available. */
  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  /** Index of the last entry (the snapshot's index when there are no entries). */
  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the last entry. */
  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== null, "the last entry's term is known", {
      detail: () => `last index ${this.lastIndex()}`,
    });
    return term;
  }

  /** Term at `index`; `null` when it is compacted away or beyond the last index. */
  term(index: number): number | null {
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return null;
    return this.unstable.maybeTerm(index) ?? this.storage.term(index);
  }

  /** True when the entry at `index` has term `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a log with (lastIndex, lastTerm) is at least as up-to-date as this one. */
  isUpToDate(candidate: IndexTerm): boolean {
    const lastTerm = this.lastTerm();
    return candidate.term > lastTerm ||
      (candidate.term === lastTerm && candidate.index >= this.lastIndex());
  }

  /**
   * The index of the first entry of `entries` that is not in this log with the same term,
   * or 0 when all are. Raft §5.3: from there on, this log must take the leader's entries.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The last index at or below `index` whose term is at most `term`, with that term. Used
   * both ways for fast backtracking: entries after it cannot match a log whose entry at
   * `index` has `term`. An unknown term (compacted) stops the search with term 0.
   */
  findConflictByTerm(index: number, term: number): IndexTerm {
    for (let candidate = index; candidate > 0; candidate -= 1) {
      const candidateTerm = this.term(candidate);
      if (candidateTerm === null) return { index: candidate, term: 0 };
      if (candidateTerm <= term) return { index: candidate, term: candidateTerm };
    }
    return { index: 0, term: 0 };
  }

  /** Appends `entries`, replacing any suffix from `entries[0].index`. Returns the new last index. */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    assert(
      first.index - 1 >= this.committed,
      "committed entries are never truncated",
      { detail: () => `append from ${first.index}, committed ${this.committed}` },
    );
    assert(
      first.index <= this.lastIndex() + 1,
      "appended entries leave no gap",
      { detail: () => `append from ${first.index}, last index ${this.lastIndex()}` },
    );
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** Entries in `[low, high)`, at least one when the range is not empty, then up to `maxBytes`. */
  slice(low: number, high: number, maxBytes: number): Entry[] {
    assert(
      this.firstIndex() <= low && low <= high && high <= this.lastIndex() + 1,
      "slice within the log",
      { detail: () => `[${low}, ${high}) of [${this.firstIndex()}, ${this.lastIndex() + 1})` },
    );
    if (low === high) return [];
    const offset = this.unstable.offset;
    let result: Entry[] = [];
    if (low < offset) {
      const storedHigh = Math.min(high, offset);
      result = this.storage.entries(low, storedHigh, maxBytes);
      if (result.length < storedHigh - low || high <= offset) return result;
    }
    const fresh = this.unstable.slice(Math.max(low, offset), high);
    if (result.length === 0) return RaftLog.#limitBytes(fresh, 0, maxBytes);
    return result.concat(RaftLog.#limitBytes(fresh, totalBytes(result), maxBytes));
  }

  /** Entries from `low` to the end, limited by `maxBytes` (at least one when `low <= lastIndex`). */
  entriesFrom(low: number, maxBytes: number): Entry[] {
    return low > this.lastIndex() ? [] : this.slice(low, this.lastIndex() + 1, maxBytes);
  }

  /** Raises the commit index to `index`; a lower `index` changes nothing (commit never decreases). */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(
      index <= this.lastIndex(),
      "committed <= lastIndex",
      { detail: () => `commit to ${index}, last index ${this.lastIndex()}` },
    );
    this.committed = index;
  }

  /**
   * Raft §5.4.2: commits up to `index` only when the entry there is of `term` (the leader's
   * current term); entries of earlier terms then commit with it. Returns whether it advanced.
   */
  maybeCommit(index: number, term: number): boolean {
    if (index <= this.committed || this.term(index) !== term) return false;
    this.commitTo(index);
    return true;
  }

  /** The state machine applied everything up to `index`. */
  appliedTo(index: number): void {
    assert(
      this.applied <= index && index <= this.committed,
      "applied <= committed and never decreases",
      { detail: () => `applied ${this.applied} -> ${index}, committed ${this.committed}` },
    );
    this.applied = index;
  }

  /** Replaces the log by `snapshot` (a follower installing a leader's snapshot). */
  restore(snapshot: Snapshot): void {
    assert(
      snapshot.metadata.index > this.committed,
      "a restored snapshot is newer than the commit index",
      { detail: () => `snapshot ${snapshot.metadata.index}, committed ${this.committed}` },
    );
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** True when a snapshot waits to be persisted and installed. */
  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  /** True when there are committed entries the state machine has not been given. */
  hasNextCommittedEntries(): boolean {
    return !this.hasPendingSnapshot() && this.committed > this.applied;
  }

  /** Committed entries after `applied`, limited in bytes; none while a snapshot is pending. */
  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applied + 1, this.committed + 1, this.#maxCommittedBytesPerReady);
  }

  /** The entries to persist next (a copy). */
  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Keeps from `entries` the first one, then as many as fit in `maxBytes` counting `usedBytes`. */
  static #limitBytes(entries: Entry[], usedBytes: number, maxBytes: number): Entry[] {
    let bytes = usedBytes;
    for (let i = 0; i < entries.length; i += 1) {
      bytes += entryBytes(entries[i]!);
      if (bytes > maxBytes && (i > 0 || usedBytes > 0)) return entries.slice(0, i);
    }
    return entries;
  }
}
