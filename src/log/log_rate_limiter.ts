/**
 * `LogRateLimiter`: bounds the log lines an event that strangers can cause may write
 * (issue 9 item 7: every stranger's Raft connection wrote a WARN line, without limit, so a
 * stranger could fill the disk and drown the lines that matter). The lines it lets through
 * say how many like them were suppressed since the last one, and every suppressed line is
 * reported (`onSuppressed`) so that a metric counts it.
 *
 * @module
 */

import { type RateLimit } from "../util/source_rate_limiter.ts";
import { TokenBucket } from "../util/token_bucket.ts";

/** Options of a {@linkcode LogRateLimiter}. */
export interface LogRateLimiterOptions {
  /** Lines written in a burst, then at a steady rate. */
  limit: RateLimit;
  /** Called once per suppressed line (a metric counts them). */
  onSuppressed?: () => void;
  /** Monotonic clock in milliseconds; `performance.now` unless a test injects one. */
  now?: () => number;
}

/** Lets lines through at a bounded rate and counts the rest. */
export class LogRateLimiter {
  readonly #bucket: TokenBucket;
  readonly #onSuppressed: () => void;
  #suppressedSinceWritten = 0;
  #suppressedTotal = 0;

  /** A limiter that starts with a full burst. */
  constructor(options: LogRateLimiterOptions) {
    this.#bucket = new TokenBucket({
      capacity: options.limit.burst,
      refillPerSecond: options.limit.perSecond,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    this.#onSuppressed = options.onSuppressed ?? (() => {});
  }

  /** Lines suppressed since this limiter was made. */
  get suppressedTotal(): number {
    return this.#suppressedTotal;
  }

  /**
   * Calls `write` with the number of lines suppressed since the last one written, if the
   * rate allows a line now; otherwise counts the line as suppressed.
   */
  write(write: (suppressedBefore: number) => void): void {
    if (!this.#bucket.tryTake().allowed) {
      this.#suppressedSinceWritten++;
      this.#suppressedTotal++;
      this.#onSuppressed();
      return;
    }
    const suppressedBefore = this.#suppressedSinceWritten;
    this.#suppressedSinceWritten = 0;
    write(suppressedBefore);
  }
}
