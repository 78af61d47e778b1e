/**
 * `CandidateTable`: the nodes mDNS has seen, keyed by DNS-SD instance name, each with its
 * advert, when it was last seen, when it expires (the record's TTL, capped) and its
 * verdict: usable, or why not. Pure: the caller passes the time.
 *
 * The table is bounded: when it is full, an expired entry goes first, then the oldest
 * entry that is not usable; a new record that finds only usable entries is refused
 * (`table_full`), so a flood cannot push out the nodes that a join needs. A record that
 * is not usable never replaces a usable one of the same name: a forger can only add noise.
 *
 * @module
 */

import type { Advert } from "./advert.ts";

/** Most candidates kept. */
export const CANDIDATES_MAX = 64;
/** Longest life of a candidate, whatever TTL its record claims (RFC 6762 §10: 120 s). */
export const CANDIDATE_TTL_MAX_MS = 120_000;

/**
 * Whether a candidate can be joined or counted: `verified` (signed with this node's
 * secret), `accepted` (no secret on this side: mDNS gives no authenticity), or the reason
 * it was refused.
 */
export type CandidateVerdict =
  | "verified"
  | "accepted"
  | "unsigned"
  | "bad_signature"
  | "stale"
  | "other_cluster";

/** One entry of the table. */
export interface Candidate {
  readonly instance: string;
  readonly advert: Advert;
  readonly verdict: CandidateVerdict;
  readonly seenAtMs: number;
  readonly expiresAtMs: number;
}

/** Whether `verdict` lets the candidate be joined and counted. */
export function isUsable(verdict: CandidateVerdict): boolean {
  return verdict === "verified" || verdict === "accepted";
}

/** What `upsert` did. */
export type UpsertOutcome = "added" | "updated" | "kept_usable" | "table_full";

/** The bounded table of candidates. */
export class CandidateTable {
  readonly #entries = new Map<string, Candidate>();
  readonly #capacity: number;

  /** An empty table of at most `capacity` entries. */
  constructor(capacity = CANDIDATES_MAX) {
    if (!(Number.isSafeInteger(capacity) && capacity >= 1)) {
      throw new RangeError(`capacity must be an integer ≥ 1, not ${capacity}`);
    }
    this.#capacity = capacity;
  }

  /** Records what `instance` said at `nowMs`, valid for `ttlMs` (capped). */
  upsert(
    instance: string,
    entry: { advert: Advert; verdict: CandidateVerdict; ttlMs: number; nowMs: number },
  ): UpsertOutcome {
    const ttlMs = Math.min(Math.max(entry.ttlMs, 0), CANDIDATE_TTL_MAX_MS);
    const candidate: Candidate = {
      instance,
      advert: entry.advert,
      verdict: entry.verdict,
      seenAtMs: entry.nowMs,
      expiresAtMs: entry.nowMs + ttlMs,
    };
    const existing = this.#entries.get(instance);
    if (existing !== undefined) {
      const displacesUsable = isUsable(existing.verdict) && !isUsable(entry.verdict) &&
        existing.expiresAtMs > entry.nowMs;
      if (displacesUsable) return "kept_usable";
      this.#entries.set(instance, candidate);
      return "updated";
    }
    if (this.#entries.size >= this.#capacity && !this.#makeRoom(entry.nowMs)) return "table_full";
    this.#entries.set(instance, candidate);
    this.#assertBounded();
    return "added";
  }

  /** Forgets `instance` (its goodbye, TTL 0). Returns whether it was there. */
  remove(instance: string): boolean {
    return this.#entries.delete(instance);
  }

  /** Drops the entries expired at `nowMs`; returns how many. */
  expire(nowMs: number): number {
    let dropped = 0;
    for (const [instance, candidate] of this.#entries) {
      if (candidate.expiresAtMs <= nowMs) {
        this.#entries.delete(instance);
        dropped++;
      }
    }
    return dropped;
  }

  /** The entries alive at `nowMs`, by node id then instance. */
  list(nowMs: number): Candidate[] {
    return [...this.#entries.values()]
      .filter((candidate) => candidate.expiresAtMs > nowMs)
      .sort((a, b) => a.advert.nodeId - b.advert.nodeId || a.instance.localeCompare(b.instance));
  }

  /** How many entries the table holds (expired ones included until `expire`). */
  get size(): number {
    return this.#entries.size;
  }

  #makeRoom(nowMs: number): boolean {
    if (this.expire(nowMs) > 0) return true;
    let oldest: Candidate | null = null;
    for (const candidate of this.#entries.values()) {
      if (isUsable(candidate.verdict)) continue;
      if (oldest === null || candidate.seenAtMs < oldest.seenAtMs) oldest = candidate;
    }
    if (oldest === null) return false;
    this.#entries.delete(oldest.instance);
    return true;
  }

  #assertBounded(): void {
    if (this.#entries.size > this.#capacity) {
      throw new Error(`CandidateTable invariant violated: ${this.#entries.size} entries`);
    }
  }
}
