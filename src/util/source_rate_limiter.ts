/**
 * `SourceRateLimiter`: a token bucket per source (an address, a P2P key) with a global bucket
 * behind them as a backstop (DESIGN.md section 8: "request rates per source with a global
 * backstop"). One source that floods empties its own bucket only, so it cannot lock out
 * another: a request is refused by its source's bucket before it takes a token from the
 * global one, and the per-source rate is far below the global rate.
 *
 * The table of buckets is bounded: at most `sourcesMax` sources are remembered, the least
 * recently seen giving way. A bucket that gives way is one that was quiet the longest, so
 * it has mostly refilled; forgetting it lets its source start full again, no more.
 *
 * Address sources are compared as `sourceOfAddress` makes them: an IPv4 address, or the
 * /64 prefix of an IPv6 address, since one host usually owns a whole /64.
 *
 * @module
 */

import { assert } from "./assert.ts";
import { type TakeResult, TokenBucket } from "./token_bucket.ts";

/** A bucket's shape: its burst and its sustained rate. */
export interface RateLimit {
  /** Requests allowed in a burst after a quiet period. */
  burst: number;
  /** Sustained requests per second. */
  perSecond: number;
}

/** Options of a {@linkcode SourceRateLimiter}. */
export interface SourceRateLimiterOptions {
  /** The bucket of each source. */
  perSource: RateLimit;
  /** The bucket shared by all sources, the backstop; none when omitted. */
  global?: RateLimit;
  /** Most sources remembered; the least recently seen gives way. */
  sourcesMax: number;
  /** Monotonic clock in milliseconds; `performance.now` unless a test injects one. */
  now?: () => number;
}

/** Rate limits per source, with a global backstop and a bounded table of sources. */
export class SourceRateLimiter {
  readonly #options: SourceRateLimiterOptions;
  readonly #now: () => number;
  /** Least recently seen first. Invariant: size <= sourcesMax. */
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #global: TokenBucket | null;

  /** A limiter with every bucket full. */
  constructor(options: SourceRateLimiterOptions) {
    assert(Number.isInteger(options.sourcesMax) && options.sourcesMax >= 1, "sourcesMax >= 1");
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#global = options.global === undefined ? null : this.#bucket(options.global);
  }

  /** Sources remembered now. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Takes a token of `source`'s bucket, then one of the global bucket. A refusal by the
   * source's bucket leaves the global bucket untouched.
   */
  tryTake(source: string): TakeResult {
    let bucket = this.#buckets.get(source);
    if (bucket === undefined) {
      bucket = this.#bucket(this.#options.perSource);
      for (const oldest of this.#buckets.keys()) {
        if (this.#buckets.size < this.#options.sourcesMax) break;
        this.#buckets.delete(oldest);
      }
    } else {
      this.#buckets.delete(source);
    }
    this.#buckets.set(source, bucket);
    assert(this.#buckets.size <= this.#options.sourcesMax, "size <= sourcesMax");
    const taken = bucket.tryTake();
    if (!taken.allowed || this.#global === null) return taken;
    return this.#global.tryTake();
  }

  #bucket(limit: RateLimit): TokenBucket {
    return new TokenBucket({
      capacity: limit.burst,
      refillPerSecond: limit.perSecond,
      now: this.#now,
    });
  }
}
