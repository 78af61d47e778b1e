/**
 * `HistoryRecorder`: the client history of a simulation, as the linearizability checker
 * reads it. An operation is invoked, then either completes with an output, is discarded
 * (known never to have taken effect), or stays pending: a pending operation's outcome is
 * unknown, so the checker treats it as possibly effective with return time +infinity.
 *
 * @module
 */

import type { KvInput, KvOperation, KvOutput } from "./linearizability.ts";

interface Recorded {
  operation: KvOperation;
  state: "pending" | "completed" | "discarded";
}

/** Records client operations with their invocation and return times. */
export class HistoryRecorder {
  readonly #operations = new Map<number, Recorded>();
  readonly #operationsMax: number;
  #nextId = 1;

  /** `operationsMax` bounds the history, so a runaway run fails loudly instead of eating memory. */
  constructor(operationsMax: number) {
    this.#operationsMax = operationsMax;
  }

  /** Records that `clientId` invoked `input` at `now`; returns the operation's id. */
  invoke(clientId: number, input: KvInput, now: number): number {
    if (this.#operations.size >= this.#operationsMax) {
      throw new RangeError(`HistoryRecorder: more than ${this.#operationsMax} operations`);
    }
    const id = this.#nextId++;
    const operation: KvOperation = {
      id,
      clientId,
      input,
      output: null,
      invokeTime: now,
      returnTime: Infinity,
    };
    this.#operations.set(id, { operation, state: "pending" });
    return id;
  }

  /** Records that operation `id` returned `output` to its client at `now`. */
  complete(id: number, output: KvOutput, now: number): void {
    const recorded = this.#pending(id, "complete");
    recorded.operation.output = output;
    recorded.operation.returnTime = now;
    recorded.state = "completed";
  }

  /** Records that operation `id` certainly never took effect (it was refused before reaching the log). */
  discard(id: number): void {
    this.#pending(id, "discard").state = "discarded";
  }

  /** The operation with `id`, as recorded so far. */
  operation(id: number): KvOperation | undefined {
    return this.#operations.get(id)?.operation;
  }

  /** Completed and pending operations (pending ones with unknown outcome), in invocation order. */
  history(): KvOperation[] {
    return [...this.#operations.values()]
      .filter((recorded) => recorded.state !== "discarded")
      .map((recorded) => ({ ...recorded.operation }));
  }

  /** How many operations are in each state. */
  counts(): { pending: number; completed: number; discarded: number } {
    const counts = { pending: 0, completed: 0, discarded: 0 };
    for (const recorded of this.#operations.values()) counts[recorded.state] += 1;
    return counts;
  }

  #pending(id: number, action: string): Recorded {
    const recorded = this.#operations.get(id);
    if (recorded === undefined) throw new Error(`HistoryRecorder.${action}: no operation ${id}`);
    if (recorded.state !== "pending") {
      throw new Error(`HistoryRecorder.${action}: operation ${id} is already ${recorded.state}`);
    }
    return recorded;
  }
}
