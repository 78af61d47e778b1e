/**
 * `ExpiringMap`: a map whose entries expire a fixed time after they were set and whose
 * size is bounded, the oldest entry giving way to a new one. It holds what strangers can
 * make a node remember (outstanding challenges, authenticated keys), so both bounds keep
 * that memory fixed whatever the network sends.
 *
 * Every entry lives equally long and the clock is monotonic, so the order of insertion is
 * also the order of expiry: expired entries are always at the front, and purging them
 * costs only what it removes.
 *
 * @module
 */

import { assert } from "../util/assert.ts";

/** Options of an {@linkcode ExpiringMap}. */
export interface ExpiringMapOptions {
  /** Most entries held; setting one more drops the oldest. */
  entriesMax: number;
  /** How long an entry lives after it was set. */
  ttlMs: number;
  /** Monotonic clock in milliseconds; `performance.now` unless a test injects one. */
  now?: () => number;
}

/** A bounded map of entries that expire `ttlMs` after they were set. */
export class ExpiringMap<Key, Value> {
  readonly #entriesMax: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  /** Oldest first. Invariant: size <= entriesMax. */
  readonly #entries = new Map<Key, { value: Value; expiresAtMs: number }>();

  /** An empty map. */
  constructor(options: ExpiringMapOptions) {
    assert(Number.isInteger(options.entriesMax) && options.entriesMax >= 1, "entriesMax >= 1");
    assert(options.ttlMs > 0 && Number.isFinite(options.ttlMs), "ttlMs > 0");
    this.#entriesMax = options.entriesMax;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Entries held, expired ones not yet purged included. */
  get size(): number {
    return this.#entries.size;
  }

  /** Sets `key` (as the newest entry, living `ttlMs` from now), dropping the oldest if full. */
  set(key: Key, value: Value): void {
    const nowMs = this.#now();
    this.#purgeExpired(nowMs);
    this.#entries.delete(key);
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size < this.#entriesMax) break;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, { value, expiresAtMs: nowMs + this.#ttlMs });
    assert(this.#entries.size <= this.#entriesMax, "size <= entriesMax");
  }

  /** The value of `key`, or `undefined` when absent or expired. */
  get(key: Key): Value | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Removes `key` and returns its value, or `undefined` when absent or expired. */
  take(key: Key): Value | undefined {
    const value = this.get(key);
    this.#entries.delete(key);
    return value;
  }

  #purgeExpired(nowMs: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAtMs > nowMs) return;
      this.#entries.delete(key);
    }
  }
}
