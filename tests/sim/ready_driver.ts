/**
 * The simulator's Ready loop: one `Ready` handled in the order the core requires
 * (`src/raft/types.ts`, DESIGN.md section 9), with the crash points between the steps made
 * explicit. The real node runs the same sequence with I/O; keeping it here, in one short
 * function, makes the two easy to compare.
 *
 * 1. persist the snapshot, entries and hard state (durable before anything depends on them);
 * 2. send the messages;
 * 3. install the snapshot, then apply the committed entries;
 * 4. `advance`.
 *
 * A crash before step 1 loses the whole Ready (nothing reached the disk); a crash before
 * step 2 or 3 keeps what was persisted and loses the rest, as a process dying there would.
 *
 * @module
 */

import type { RaftCore } from "../../src/raft/raft_core.ts";
import type { Entry, Message, ReadState, Ready, Snapshot } from "../../src/raft/types.ts";
import type { ApplyResult } from "../../src/state_machine/apply_result.ts";
import type { KvStateMachine } from "../../src/state_machine/kv_state_machine.ts";
import type { DurableStorage } from "../../src/storage/storage.ts";

/** Where in the Ready loop a simulated process may die. */
export type CrashPoint = "beforePersist" | "beforeSend" | "beforeApply";

/** Every crash point, in loop order. */
export const CRASH_POINTS: readonly CrashPoint[] = ["beforePersist", "beforeSend", "beforeApply"];

/** The parts of a node the loop drives. */
export interface ReadyParts {
  core: RaftCore;
  storage: DurableStorage;
  stateMachine: KvStateMachine;
}

/** What the loop reports to, and asks of, the world around the node. */
export interface ReadyEffects {
  /** Asked at each crash point: true makes the process die there. */
  crashesAt(point: CrashPoint): boolean;
  /** The Ready's snapshot, entries and hard state are now durable. */
  persisted(ready: Ready): void;
  /** Hands a message to the network. */
  send(message: Message): void;
  /** The state machine now holds `snapshot`'s state. */
  installed(snapshot: Snapshot): void;
  /** The state machine applied `entry` with `result`. */
  applied(entry: Entry, result: ApplyResult): void;
  /** ReadIndex requests the core completed: serve them once applied up to their index. */
  readStates(readStates: readonly ReadState[]): void;
}

/** Whether the Ready was handled to the end or the process died on the way. */
export type ReadyOutcome = "advanced" | "crashed";

/** Handles one `Ready` of `parts.core`. Precondition: `parts.core.hasReady()`. */
export function handleReady(parts: ReadyParts, effects: ReadyEffects): ReadyOutcome {
  const ready = parts.core.ready();
  if (effects.crashesAt("beforePersist")) return "crashed";
  parts.storage.persist({
    hardState: ready.hardState,
    entries: ready.entries,
    snapshot: ready.snapshot,
  });
  effects.persisted(ready);
  if (effects.crashesAt("beforeSend")) return "crashed";
  for (const message of ready.messagesBeforePersist) effects.send(message);
  for (const message of ready.messages) effects.send(message);
  if (effects.crashesAt("beforeApply")) return "crashed";
  if (ready.snapshot !== null) {
    parts.stateMachine.restore(ready.snapshot);
    effects.installed(ready.snapshot);
  }
  for (const entry of ready.committedEntries) {
    effects.applied(entry, parts.stateMachine.apply(entry));
  }
  if (ready.readStates.length > 0) effects.readStates(ready.readStates);
  parts.core.advance(ready);
  return "advanced";
}
