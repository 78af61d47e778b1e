/**
 * The part of the log that is not durable yet: entries appended since the last `Ready`
 * was persisted, and possibly an incoming snapshot. It shadows storage: an entry here
 * replaces the stored entry at the same index once persisted.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import type { Entry, Snapshot } from "./types.ts";

/**
 * Unstable entries in one array starting at log index `offset`.
 * Invariant: `entries[i].index === offset + i`; with a snapshot, `offset === snapshot.index + 1`.
 */
export class UnstableLog {
  /** The snapshot received from a leader and not yet persisted, or `null`. */
  snapshot: Snapshot | null = null;
  /** Not yet persisted entries; `entries[0]` has index `offset`. */
  entries: Entry[] = [];
  /** Log index of `entries[0]` (or of the next entry when `entries` is empty). */
  offset: number;

  /** `offset` is the index after the last durable entry. */
  constructor(offset: number) {
    assert(Number.isSafeInteger(offset) && offset >= 1, "unstable offset >= 1", {
      detail: () => `${offset}`,
    });
    this.offset = offset;
  }

  /** The first log index if the unstable snapshot defines it, else `null`. */
  maybeFirstIndex(): number | null {
    return this.snapshot === null ? null : this.snapshot.metadata.index + 1;
  }

  /** The last log index if unstable entries or snapshot define it, else `null`. */
  maybeLastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? null : this.snapshot.metadata.index;
  }

  /** The term at `index` if this part of the log knows it, else `null`. */
  maybeTerm(index: number): number | null {
    if (index < this.offset) {
      const snapshot = this.snapshot;
      return snapshot !== null && snapshot.metadata.index === index ? snapshot.metadata.term : null;
    }
    const entry = this.entries[index - this.offset];
    return entry === undefined ? null : entry.term;
  }

  /**
   * Entries up to `index` (of `term`) are durable: drop them. A mismatching term means the
   * entry was replaced after the `Ready` that carried it, so it is still unstable.
   */
  stableTo(index: number, term: number): void {
    if (index < this.offset) return;
    const entry = this.entries[index - this.offset];
    if (entry === undefined || entry.term !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  /** The snapshot at `index` is durable. */
  stableSnapshotTo(index: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === index) this.snapshot = null;
  }

  /** Replaces everything with `snapshot` (a follower installing a leader's snapshot). */
  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  /**
   * Appends `entries`, first discarding any entries at or after `entries[0].index` (the
   * conflicting suffix). Entries before `offset` that are replaced live in storage and
   * are replaced there when this part is persisted.
   */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (after <= this.offset) {
      this.offset = after;
      this.entries = entries.slice();
    } else {
      const kept = this.entries.slice(0, after - this.offset);
      for (const entry of entries) kept.push(entry);
      this.entries = kept;
    }
  }

  /** Entries with index in `[low, high)`. Precondition: `offset <= low <= high <= offset + entries.length`. */
  slice(low: number, high: number): Entry[] {
    assert(
      this.offset <= low && low <= high && high <= this.offset + this.entries.length,
      "unstable slice within bounds",
      {
        detail: () => `[${low}, ${high}) of [${this.offset}, ${this.offset + this.entries.length})`,
      },
    );
    return this.entries.slice(low - this.offset, high - this.offset);
  }
}
