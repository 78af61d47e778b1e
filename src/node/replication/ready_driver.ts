/**
 * `ReadyDriver`: the one loop that drives a `RaftCore` (the Ready contract of
 * `src/raft/mod.ts`). The node, the simulator, the scenario tests' network and the core
 * benchmark all run this code, so what the simulator checks is what production does.
 *
 * After anything reaches the core (a tick, a message, a proposal, a read), the owner calls
 * `schedule()`; one run is scheduled on the injected scheduler (`setImmediate` in
 * production, after the I/O callbacks already waiting, so everything that arrived meanwhile
 * shares one Ready and one fsync; the simulator's event queue in simulation). A run handles
 * Readies until the core has none, each in this order:
 *
 * 1. sends `ready.messagesBeforePersist`: the core decides what may leave before the
 *    persist (a leader's replication, Raft thesis §10.2.1, see `docs/decisions.md`);
 * 2. persists the snapshot, entries and hard state and applies the snapshot and committed
 *    entries, in ONE storage transaction: an entry committed in this Ready is durable
 *    together with its effects, or neither is. The transaction waits for the disk only when
 *    `ready.mustSync`; a Ready that only commits and applies can be rebuilt from the
 *    durable log;
 * 3. sends `ready.messages` (votes and acknowledgements never outrun the state they
 *    promise);
 * 4. tells its owner what was applied, installed and read (`ReadyEvents`);
 * 5. calls `advance`.
 *
 * A run is synchronous from `ready()` to `advance()`, so the core is never re-entered, and
 * the leader reads acknowledgements (and so counts itself toward a commit) only after its
 * own write returned.
 *
 * A persist that fails with an error the owner calls transient (`persistRetryable`: a full
 * disk) rolled back whole; the driver then holds that Ready with steps 3 to 5 undone, and
 * the next run tries its persist again before anything else. While a Ready is held
 * (`holding`) the owner must not touch the core: the core then sees what it would see from
 * a process stopped between the early send and the persist.
 *
 * @module
 */

import type { RaftCore } from "../../raft/raft_core.ts";
import type { Entry, Message, ReadState, Ready, Snapshot, SoftState } from "../../raft/types.ts";
import type { PersistRequest } from "../../storage/storage.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../../util/scheduler.ts";

/** The storage writes a Ready needs: `SqliteStorage`, or `MemoryStorage` in simulation. */
export interface ReadyStorage {
  /** Makes the request part of the enclosing transaction. */
  persist(request: PersistRequest): void;
  /**
   * Runs `fn` as one atomic transaction; returns once it is synced to stable storage when
   * `durable`, else once it is written (a power loss may take it back whole).
   */
  transaction<T>(fn: () => T, options: { durable: boolean }): T;
}

/** The state machine a Ready applies to; `R` is the result of one entry. */
export interface ReadyStateMachine<R> {
  /** Replaces the whole state with the snapshot's image. */
  restore(snapshot: Snapshot): void;
  /** Applies `entries` in order (inside the persist's transaction); one result per entry. */
  applyAll(entries: readonly Entry[]): R[];
}

/**
 * Where a simulated process may die inside a run:
 * - `beforeSend`: the Ready was taken, nothing sent or written;
 * - `afterEarlySend`: `messagesBeforePersist` left, nothing written (between the early send
 *   and the fsync);
 * - `afterPersist`: the transaction committed (persisted and applied, synced if
 *   `mustSync`), and nothing that depends on it happened: no message of `messages` sent,
 *   no client answered, no `advance` (between the fsync and what the apply enables).
 */
export type CrashPoint = "beforeSend" | "afterEarlySend" | "afterPersist";

/** Every crash point, in loop order. */
export const CRASH_POINTS: readonly CrashPoint[] = ["beforeSend", "afterEarlySend", "afterPersist"];

/** What a run tells its owner, in this order within one Ready. */
export interface ReadyEvents<R> {
  /** Entries about to be persisted, before any message leaves (possibly before they commit). */
  appended?(entries: readonly Entry[]): void;
  /** The Ready's transaction committed (synced when `ready.mustSync`). */
  persisted?(ready: Ready): void;
  /** The role or the leader changed. */
  softState?(softState: SoftState): void;
  /** The state machine now holds `snapshot`'s state. */
  installed?(snapshot: Snapshot): void;
  /** `entry` was applied with `result`, in index order. */
  applied?(entry: Entry, result: R): void;
  /** ReadIndex requests the core completed: serve each once applied up to its index. */
  readStates?(readStates: readonly ReadState[]): void;
  /** One Ready was handled to the end (`advance` called). */
  advanced?(): void;
  /** A run handled at least one Ready and the core has none left. */
  settled?(): void;
  /** The process died at `point` (see `ReadyDriverOptions.crashesAt`); the driver is stopped. */
  crashed?(point: CrashPoint): void;
  /** A persist failed with a retryable error; its Ready is held until a run persists it. */
  persistFailed?(error: unknown): void;
  /** The held Ready's persist succeeded; the run goes on with it. */
  persistRecovered?(): void;
}

/** Options of a {@linkcode ReadyDriver}. */
export interface ReadyDriverOptions<R> {
  core: RaftCore;
  storage: ReadyStorage;
  stateMachine: ReadyStateMachine<R>;
  /** Hands messages to the network. */
  send(messages: Message[]): void;
  /** Where runs are deferred to (`soon`); defaults to `SYSTEM_SCHEDULER` (`setImmediate`). */
  scheduler?: Pick<Scheduler, "soon">;
  events?: ReadyEvents<R>;
  /**
   * Test seam for the simulator: asked at each crash point of each Ready; `true` makes the
   * process die there (the driver stops without finishing the Ready). Production leaves it
   * out.
   */
  crashesAt?(point: CrashPoint, ready: Ready): boolean;
  /**
   * True for a persist error after which the same persist may succeed later (a full disk):
   * the Ready is held instead of the error thrown. Other errors are thrown from `run()`.
   */
  persistRetryable?(error: unknown): boolean;
}

/** Drives one `RaftCore`: persist, send, apply, advance, on a scheduler. */
export class ReadyDriver<R> {
  readonly #core: RaftCore;
  readonly #storage: ReadyStorage;
  readonly #stateMachine: ReadyStateMachine<R>;
  readonly #send: (messages: Message[]) => void;
  readonly #scheduler: Pick<Scheduler, "soon">;
  readonly #events: ReadyEvents<R>;
  readonly #crashesAt: (point: CrashPoint, ready: Ready) => boolean;
  readonly #persistRetryable: (error: unknown) => boolean;
  /** The Ready whose persist failed and waits to be tried again, or `null`. */
  #held: Ready | null = null;
  #scheduled = false;
  #stopped = false;
  /** Readies handled to the end, for metrics. */
  readyPasses = 0;

  constructor(options: ReadyDriverOptions<R>) {
    this.#core = options.core;
    this.#storage = options.storage;
    this.#stateMachine = options.stateMachine;
    this.#send = options.send;
    this.#scheduler = options.scheduler ?? SYSTEM_SCHEDULER;
    this.#events = options.events ?? {};
    this.#crashesAt = options.crashesAt ?? (() => false);
    this.#persistRetryable = options.persistRetryable ?? (() => false);
  }

  /** Something reached the core: run once soon, together with whatever else arrives meanwhile. */
  schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    this.#scheduler.soon(() => {
      this.#scheduled = false;
      this.run();
    });
  }

  /**
   * Tries the held Ready's persist again, if any, then handles Readies until the core has
   * none (or the driver stops, or a persist fails and its Ready is held).
   */
  run(): void {
    let passes = 0;
    if (this.#held !== null && !this.#stopped) {
      passes++;
      this.#persistAndFinish(this.#held);
    }
    while (!this.#stopped && this.#held === null && this.#core.hasReady()) {
      passes++;
      this.#handle(this.#core.ready());
    }
    if (passes > 0 && !this.#stopped && this.#held === null) this.#events.settled?.();
  }

  /** True while a Ready whose persist failed waits for the next run; the core must wait too. */
  get holding(): boolean {
    return this.#held !== null;
  }

  /** No run starts after this; a run in progress ends after its current Ready. */
  stop(): void {
    this.#stopped = true;
  }

  /** True once stopped (by `stop()` or a simulated crash). */
  get stopped(): boolean {
    return this.#stopped;
  }

  #handle(ready: Ready): void {
    const events = this.#events;
    if (this.#crashed("beforeSend", ready)) return;
    // A leader's first AppendEntries to a learner it just added needs the learner's
    // address, which arrives in that very entry: the owner learns it before anything leaves.
    if (ready.entries.length > 0) events.appended?.(ready.entries);
    if (ready.messagesBeforePersist.length > 0) this.#send(ready.messagesBeforePersist);
    if (this.#crashed("afterEarlySend", ready)) return;
    this.#persistAndFinish(ready);
  }

  /** Steps 2 to 5 of `ready`; holds it instead when its persist fails with a retryable error. */
  #persistAndFinish(ready: Ready): void {
    const events = this.#events;
    let results: R[];
    try {
      results = this.#storage.transaction(() => {
        this.#storage.persist({
          hardState: ready.hardState,
          entries: ready.entries,
          snapshot: ready.snapshot,
        });
        if (ready.snapshot !== null) this.#stateMachine.restore(ready.snapshot);
        return this.#stateMachine.applyAll(ready.committedEntries);
      }, { durable: ready.mustSync });
    } catch (error) {
      if (!this.#persistRetryable(error)) throw error;
      // Rolled back whole: nothing of this Ready is durable, so nothing that claims it is
      // (votes, acknowledgements, answers, advance) may happen before a retry succeeds.
      this.#held = ready;
      events.persistFailed?.(error);
      return;
    }
    if (this.#held !== null) {
      this.#held = null;
      events.persistRecovered?.();
    }
    events.persisted?.(ready);
    if (this.#crashed("afterPersist", ready)) return;
    if (ready.messages.length > 0) this.#send(ready.messages);
    if (ready.softState !== null) events.softState?.(ready.softState);
    if (ready.snapshot !== null) events.installed?.(ready.snapshot);
    if (events.applied !== undefined) {
      ready.committedEntries.forEach((entry, i) => events.applied!(entry, results[i]!));
    }
    if (ready.readStates.length > 0) events.readStates?.(ready.readStates);
    this.#core.advance(ready);
    this.readyPasses++;
    events.advanced?.();
  }

  #crashed(point: CrashPoint, ready: Ready): boolean {
    if (!this.#crashesAt(point, ready)) return false;
    this.#stopped = true;
    this.#events.crashed?.(point);
    return true;
  }
}
