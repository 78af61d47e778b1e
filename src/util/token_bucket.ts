/**
 * `TokenBucket`: a rate limit that allows bursts up to a capacity and refills at a steady
 * rate. Used to bound requests on `/bootstrap` (DESIGN.md section 8: every input from the
 * network is bounded), and reusable for the join RPC.
 *
 * @module
 */

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Most tokens held: the largest burst allowed after a quiet period. */
  capacity: number;
  /** Tokens added per second, up to `capacity`. */
  refillPerSecond: number;
  /** Monotonic clock in milliseconds; `performance.now` unless a test injects one. */
  now?: () => number;
}

/** The answer of {@linkcode TokenBucket.tryTake}. */
export type TakeResult = { allowed: true } | { allowed: false; retryAfterMs: number };

/** A token bucket; the bucket starts full. */
export class TokenBucket {
  readonly #capacity: number;
  readonly #refillPerMs: number;
  readonly #now: () => number;
  // Invariant: 0 <= #tokens <= #capacity.
  #tokens: number;
  #refilledAtMs: number;

  /** Creates a full bucket. */
  constructor(options: TokenBucketOptions) {
    if (!(Number.isInteger(options.capacity) && options.capacity >= 1)) {
      throw new Error(`TokenBucket capacity must be an integer ≥ 1, got ${options.capacity}`);
    }
    if (!(options.refillPerSecond > 0 && Number.isFinite(options.refillPerSecond))) {
      throw new Error(`TokenBucket refillPerSecond must be > 0, got ${options.refillPerSecond}`);
    }
    this.#capacity = options.capacity;
    this.#refillPerMs = options.refillPerSecond / 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = options.capacity;
    this.#refilledAtMs = this.#now();
  }

  /** Takes one token if there is one; otherwise says how long until there will be. */
  tryTake(): TakeResult {
    this.#refill();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterMs: Math.ceil((1 - this.#tokens) / this.#refillPerMs) };
  }

  #refill(): void {
    const nowMs = this.#now();
    // A clock that steps back (it should not: it is monotonic) must not drain the bucket.
    const elapsedMs = Math.max(0, nowMs - this.#refilledAtMs);
    this.#tokens = Math.min(this.#capacity, this.#tokens + elapsedMs * this.#refillPerMs);
    this.#refilledAtMs = nowMs;
    if (!(this.#tokens >= 0 && this.#tokens <= this.#capacity)) {
      throw new Error(`TokenBucket invariant violated: tokens=${this.#tokens}`);
    }
  }
}
