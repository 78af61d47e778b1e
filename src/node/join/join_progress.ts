/**
 * The visible progress of a join (DESIGN.md section 6): which phase it is in, since when,
 * and the last error, for `/status` (`join`), the log and `blixard_join_duration_seconds`.
 *
 * @module
 */

/** The phases of a join, in order. */
export const JOIN_PHASES = [
  "discovering",
  "connected",
  /** Proved the cluster secret to the seed; skipped when the node has no secret. */
  "authenticated",
  "joining",
  "learner",
  "voter",
] as const;

/** One phase of a join. */
export type JoinPhase = typeof JOIN_PHASES[number];

/** The `join` object of `/status`. */
export interface JoinStatusJson {
  phase: JoinPhase;
  /** When the phase began, ISO 8601. */
  since: string;
  last_error: string | null;
}

/** Tracks one join; `phase` is `null` for a node that is not joining (founder, restart). */
export class JoinProgress {
  #phase: JoinPhase | null;
  #since = new Date();
  #lastError: string | null = null;
  #startedAtMs = performance.now();
  #listeners: ((phase: JoinPhase, elapsedMs: number) => void)[] = [];

  /** Starts in `phase`, or not joining at all with `null`. */
  constructor(phase: JoinPhase | null) {
    this.#phase = phase;
  }

  /** The current phase, or `null` when not joining. */
  get phase(): JoinPhase | null {
    return this.#phase;
  }

  /** Moves forward to `phase`; moving backwards or staying is ignored. */
  advance(phase: JoinPhase): void {
    const current = this.#phase === null ? -1 : JOIN_PHASES.indexOf(this.#phase);
    if (JOIN_PHASES.indexOf(phase) <= current) return;
    this.#phase = phase;
    this.#since = new Date();
    // Added to the cluster: the failures of earlier attempts are history, not the state.
    if (phase === "learner" || phase === "voter") this.#lastError = null;
    const elapsedMs = performance.now() - this.#startedAtMs;
    for (const listener of this.#listeners) listener(phase, elapsedMs);
  }

  /** Records the latest failure; the join keeps trying. It is cleared once the node is added. */
  failed(message: string): void {
    this.#lastError = message;
  }

  /** Calls `listener` on every phase change with the time since the join began. */
  onPhase(listener: (phase: JoinPhase, elapsedMs: number) => void): void {
    this.#listeners.push(listener);
  }

  /** The `/status` `join` object, or `null` when not joining. */
  toJson(): JoinStatusJson | null {
    if (this.#phase === null) return null;
    return { phase: this.#phase, since: this.#since.toISOString(), last_error: this.#lastError };
  }
}
