/**
 * `MembershipLog`: the configuration at the end of the node's log, and how to go back.
 *
 * A membership change takes effect as soon as its entry is appended (Raft thesis §4.1),
 * so a follower whose uncommitted entries are overwritten by a new leader must return to
 * the configuration it had before them. This keeps, for every uncommitted membership
 * entry, the configuration that preceded it; committed ones can never be undone.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { applyMembershipChange, confStateAfter, confStatesEqual } from "./membership.ts";
import type { ConfState, Entry, RaftStorage } from "./types.ts";

interface UncommittedChange {
  index: number;
  /** The configuration before the entry at `index`. */
  before: ConfState;
}

/** The current configuration plus the uncommitted membership entries that produced it. */
export class MembershipLog {
  #conf: ConfState;
  /** In index order; every `index` is above the commit index last reported. */
  #uncommitted: UncommittedChange[] = [];

  /** Starts at `conf`, with no uncommitted membership entries. */
  constructor(conf: ConfState) {
    this.#conf = conf;
  }

  /**
   * Rebuilds the membership of a restarted node from its storage. Usually there is no
   * uncommitted membership entry and `initialState()`'s configuration is all it needs;
   * otherwise the configuration before the first one is recomputed from the snapshot and
   * the log, so that a later truncation can still be undone.
   */
  static recover(
    storage: RaftStorage,
    options: { committed: number; confState: ConfState },
  ): MembershipLog {
    const lastIndex = storage.lastIndex();
    const tail = lastIndex > options.committed
      ? storage.entries(options.committed + 1, lastIndex + 1, Number.POSITIVE_INFINITY)
      : [];
    if (!tail.some((entry) => entry.type === "membership")) {
      return new MembershipLog(options.confState);
    }
    const firstIndex = storage.firstIndex();
    const prefix = options.committed >= firstIndex
      ? storage.entries(firstIndex, options.committed + 1, Number.POSITIVE_INFINITY)
      : [];
    const log = new MembershipLog(confStateAfter(storage.snapshot().metadata.confState, prefix));
    log.appended(tail);
    assert(
      confStatesEqual(log.conf, options.confState),
      "recovered configuration matches storage",
      {
        detail: () =>
          `recovered ${JSON.stringify(log.conf)}, storage ${JSON.stringify(options.confState)}`,
      },
    );
    return log;
  }

  /** The configuration at the end of the log. */
  get conf(): ConfState {
    return this.#conf;
  }

  /** True when a membership entry after `committed` is in the log. */
  hasUncommitted(): boolean {
    return this.#uncommitted.length > 0;
  }

  /** Applies the membership entries among `entries`, just appended. Returns whether the configuration changed. */
  appended(entries: readonly Entry[]): boolean {
    let changed = false;
    for (const entry of entries) {
      if (entry.type !== "membership") continue;
      this.#uncommitted.push({ index: entry.index, before: this.#conf });
      this.#conf = applyMembershipChange(this.#conf, entry.change);
      changed = true;
    }
    return changed;
  }

  /** Entries from `index` on were removed: undoes their membership changes. Returns whether the configuration changed. */
  truncatedFrom(index: number): boolean {
    let firstRemoved = this.#uncommitted.length;
    while (firstRemoved > 0 && this.#uncommitted[firstRemoved - 1]!.index >= index) {
      firstRemoved -= 1;
    }
    const removed = this.#uncommitted[firstRemoved];
    if (removed === undefined) return false;
    this.#conf = removed.before;
    this.#uncommitted.length = firstRemoved;
    return true;
  }

  /** Entries up to `index` are committed: their changes are final. */
  committedTo(index: number): void {
    let count = 0;
    while (count < this.#uncommitted.length && this.#uncommitted[count]!.index <= index) count += 1;
    if (count > 0) this.#uncommitted = this.#uncommitted.slice(count);
  }

  /** The log was replaced by a snapshot whose configuration is `conf`. */
  restore(conf: ConfState): void {
    this.#conf = conf;
    this.#uncommitted = [];
  }
}
