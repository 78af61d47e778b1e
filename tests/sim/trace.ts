/**
 * `Trace`: the last events of a simulation, kept in a ring so that a failure can print
 * what led up to it without the run holding every event in memory.
 *
 * @module
 */

/** A bounded log of simulation events, oldest dropped first. */
export class Trace {
  readonly #lines: string[];
  #next = 0;
  #recorded = 0;
  readonly #follow: ((line: string) => void) | undefined;

  /** Keeps the last `capacity` events; `follow`, when given, also sees every event as it happens. */
  constructor(capacity: number, follow?: (line: string) => void) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`Trace: capacity ${capacity} must be an integer >= 1`);
    }
    this.#lines = new Array<string>(capacity);
    this.#follow = follow;
  }

  /** Events recorded since the start, including those no longer kept. */
  get recorded(): number {
    return this.#recorded;
  }

  /** Records one event at simulated time `time`. */
  record(time: number, text: string): void {
    const line = `${String(time).padStart(7)}  ${text}`;
    this.#lines[this.#next] = line;
    this.#follow?.(line);
    this.#next = (this.#next + 1) % this.#lines.length;
    this.#recorded += 1;
  }

  /** The kept events, oldest first. */
  lines(): string[] {
    const kept = Math.min(this.#recorded, this.#lines.length);
    const start = (this.#next - kept + this.#lines.length) % this.#lines.length;
    return Array.from(
      { length: kept },
      (_, i) => this.#lines[(start + i) % this.#lines.length] as string,
    );
  }
}
