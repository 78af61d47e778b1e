/**
 * A client that keeps writing while a test breaks the cluster, and remembers exactly which
 * writes were acknowledged, so that the test can check each one afterwards.
 *
 * Every write puts a key of its own with a value of its own, so a read tells which write
 * it saw. Waits poll with generous deadlines; nothing here measures time.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BlixardClient } from "../../src/client/client.ts";

/** Deadline for the writer to reach a number of acknowledged writes. */
const PROGRESS_WAIT_MS = 30_000;
const POLL_INTERVAL_MS = 10;
/** Writes one writer makes at most: a test that needs more is doing something else. */
const WRITES_MAX = 100_000;

/** A write that failed: its key and the client's error. */
export interface FailedWrite {
  key: string;
  error: unknown;
}

/** Options of {@linkcode startWriter}. */
export interface WriterOptions {
  /** Keys are `<prefix><number>`. */
  prefix: string;
  /** Writes in flight at once (default 1: each write waits for the previous answer). */
  concurrency?: number;
  /** Deadline of each write, retries included (the client's default otherwise). */
  timeoutMs?: number;
}

/** A running writer; `stop()` ends it after the writes in flight settle. */
export class Writer {
  /** Key → value of every acknowledged write, in the order of acknowledgement. */
  readonly acknowledged = new Map<string, string>();
  /** Every write the client reported as failed. */
  readonly failures: FailedWrite[] = [];
  #stopping = false;
  #next = 0;
  readonly #loops: Promise<void>[];

  constructor(client: BlixardClient, options: WriterOptions) {
    const concurrency = options.concurrency ?? 1;
    assert.ok(concurrency >= 1 && concurrency <= 64, `concurrency ${concurrency}`);
    const writeOptions = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    const loop = async () => {
      while (!this.#stopping && this.#next < WRITES_MAX) {
        const number = this.#next++;
        const key = `${options.prefix}${String(number).padStart(6, "0")}`;
        const value = `${key}=${crypto.randomUUID()}`;
        try {
          await client.put(key, value, writeOptions);
          this.acknowledged.set(key, value);
        } catch (error) {
          this.failures.push({ key, error });
        }
      }
    };
    this.#loops = Array.from({ length: concurrency }, loop);
  }

  /** Writes attempted so far (acknowledged, failed, or in flight). */
  get started(): number {
    return this.#next;
  }

  /** Waits until `count` more writes than now are acknowledged. */
  async waitForMore(count: number): Promise<void> {
    const target = this.acknowledged.size + count;
    const deadline = performance.now() + PROGRESS_WAIT_MS;
    while (this.acknowledged.size < target) {
      if (performance.now() > deadline) {
        assert.fail(
          `the writer reached ${this.acknowledged.size} of ${target} acknowledged writes in ` +
            `${PROGRESS_WAIT_MS} ms; failures: ${this.describeFailures()}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  /** Stops writing and waits for the writes in flight to settle. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#loops);
  }

  /** The failures, one per line, for assertion messages. */
  describeFailures(): string {
    if (this.failures.length === 0) return "none";
    return this.failures.map(({ key, error }) =>
      `${key}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
    ).join("\n");
  }
}

/** Starts writing through `client` at once. */
export function startWriter(client: BlixardClient, options: WriterOptions): Writer {
  return new Writer(client, options);
}

/**
 * Reads every acknowledged write back through `client` and returns one line per key whose
 * value is missing or different (empty when none was lost). With `prefix` (the writer's),
 * the keys are first read in the pages of one linearizable list, and only a key the list
 * shows missing or different is read again on its own: a long run's writes (up to 100,000)
 * are read back in seconds, not one round trip each. Without it, one key at a time. A read
 * that fails is tried again for up to `retryForMs` (default 0) from its first attempt, so a
 * long read-back on a loaded machine fails only when the cluster answers nothing that long.
 */
export async function lostWrites(
  client: BlixardClient,
  acknowledged: ReadonlyMap<string, string>,
  options: { retryForMs?: number; prefix?: string } = {},
): Promise<string[]> {
  const decoder = new TextDecoder();
  // A read that fails (no leader yet on a loaded machine) is asked again until then.
  const read = <T>(attempt: () => Promise<T>) =>
    retryUntil(performance.now() + (options.retryForMs ?? 0), attempt);
  const prefix = options.prefix;
  const listed = prefix === undefined ? null : new Map(
    (await read(() => client.list(prefix))).map((item) => [
      decoder.decode(item.key),
      decoder.decode(item.value),
    ]),
  );
  const wrong: string[] = [];
  for (const [key, value] of acknowledged) {
    if (listed?.get(key) === value) continue;
    const got = await read(() => client.get(key));
    const text = got === null ? null : decoder.decode(got);
    if (text !== value) wrong.push(`${key}: expected ${value}, read ${text}`);
  }
  return wrong;
}

/**
 * Reads every acknowledged write back through `client`, one key at a time, and fails with
 * the list of keys whose value is missing or different.
 */
export async function assertEveryWriteReadable(
  client: BlixardClient,
  acknowledged: ReadonlyMap<string, string>,
): Promise<void> {
  const wrong = await lostWrites(client, acknowledged);
  assert.deepEqual(wrong, [], `${wrong.length} of ${acknowledged.size} acknowledged writes lost`);
}

/**
 * Runs `attempt` until it succeeds; after `deadlineMs` (`performance.now()`) its error is
 * thrown, and at once when `retryable` says the error is not worth another try.
 */
export async function retryUntil<T>(
  deadlineMs: number,
  attempt: () => Promise<T>,
  retryable: (error: unknown) => boolean = () => true,
): Promise<T> {
  for (let tries = 1;; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (!retryable(error) || performance.now() >= deadlineMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * tries)));
    }
  }
}
