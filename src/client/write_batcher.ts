/**
 * `WriteBatcher`: gathers the puts a client issues in one turn of the event loop into one
 * `kv.put_many` request. Each RPC costs a stream, two frames and several crossings of the
 * Iroh binding, far more than a put itself; with many writes in flight, sending them one
 * request each made the RPC layer the limit (about 1,000 requests/s on this machine), while
 * the leader proposes a batch in one Ready with one fsync.
 *
 * A put waits at most one `setImmediate` hop for company, so a lone put is not delayed.
 * Each put keeps its own session and its own result or error, and is retried by its
 * caller like any other call.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** One put of a batch, with its session. */
export interface PutItem {
  key: Uint8Array;
  value: Uint8Array;
  request: { clientId: string; sequence: number };
}

/** One put's outcome: its commit index, or why it failed. */
export type PutItemResult = { index: number } | { error: { code: string; message: string } };

/** Sends one batch and returns one result per item, in order; rejects when the whole call fails. */
export type SendBatch = (
  items: PutItem[],
  options: { timeoutMs: number },
) => Promise<PutItemResult[]>;

interface Waiting {
  item: PutItem;
  timeoutMs: number;
  resolve: (result: PutItemResult) => void;
  reject: (error: unknown) => void;
}

/** Batches puts for one client. */
export class WriteBatcher {
  readonly #send: SendBatch;
  readonly #itemsMax: number;
  readonly #bytesMax: number;
  #waiting: Waiting[] = [];
  #flushScheduled = false;

  /** `send` performs one batch call; batches hold at most `itemsMax` items and `bytesMax` bytes. */
  constructor(send: SendBatch, limits: { itemsMax: number; bytesMax: number }) {
    this.#send = send;
    this.#itemsMax = limits.itemsMax;
    this.#bytesMax = limits.bytesMax;
  }

  /**
   * Queues `item` for the next batch. Resolves with its own result (an index or an error
   * to report); rejects when the batch call as a whole fails (the caller retries).
   */
  submit(item: PutItem, options: { timeoutMs: number }): Promise<PutItemResult> {
    const { promise, resolve, reject } = Promise.withResolvers<PutItemResult>();
    this.#waiting.push({ item, timeoutMs: options.timeoutMs, resolve, reject });
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    return promise;
  }

  #flush(): void {
    this.#flushScheduled = false;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const batch of this.#split(waiting)) this.#sendBatch(batch);
  }

  /** Consecutive groups within the item and byte limits (a single item always fits alone). */
  #split(waiting: Waiting[]): Waiting[][] {
    const batches: Waiting[][] = [];
    let current: Waiting[] = [];
    let bytes = 0;
    for (const entry of waiting) {
      const size = entry.item.key.length + entry.item.value.length;
      if (
        current.length > 0 && (current.length >= this.#itemsMax || bytes + size > this.#bytesMax)
      ) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push(entry);
      bytes += size;
    }
    if (current.length > 0) batches.push(current);
    return batches;
  }

  #sendBatch(batch: Waiting[]): void {
    // The batch lives as long as its most patient item allows.
    const timeoutMs = Math.max(...batch.map((entry) => entry.timeoutMs));
    this.#send(batch.map((entry) => entry.item), { timeoutMs }).then(
      (results) => {
        batch.forEach((entry, i) => {
          const result = results[i];
          if (result === undefined) {
            entry.reject(
              new Error(`the batch answer has ${results.length} results for ${batch.length} puts`),
            );
          } else {
            entry.resolve(result);
          }
        });
      },
      (error) => batch.forEach((entry) => entry.reject(error)),
    );
  }
}
