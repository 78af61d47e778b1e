/**
 * Clients that keep working on a cluster while the harness breaks it, and record every
 * operation the way the simulator's clients do (`HistoryRecorder`, read by the same
 * linearizability checker): invoked, then completed with what the client was told, or
 * discarded when it surely took no effect (a failed read), or left pending when its
 * outcome is unknown (a write that timed out or met a broken connection may still commit).
 *
 * Each cycle of faults works on keys of its own (`c<cycle>/k<i>`), so a cycle's history is
 * complete in itself and checked alone, and ends with a read of each of its keys once the
 * cluster is whole again: a write lost on a shared key shows up there as a violation.
 *
 * @module
 */

import { BlixardClient, ClientError } from "../../../src/client/client.ts";
import { HistoryRecorder } from "../../sim/history_recorder.ts";
import { WAIT_MS } from "../../helpers/wait_budget.ts";
import type { KvInput, KvOperation, KvOutput } from "../../sim/linearizability.ts";

/** Keys each cycle's clients share: few, so operations on a key overlap often. */
const KEYS_PER_CYCLE = 3;
/** Operations one cycle may record: a bound, not a target. */
const OPERATIONS_PER_CYCLE_MAX = 50_000;
/** Pause between one client's operations: the load stays moderate on a shared machine. */
const THINK_MS = 5;
/**
 * Deadline of one operation, the client's retries included: 5 s with the helpers' default
 * wait, longer when `BLIXARD_TEST_WAIT_MS` raises it for a loaded machine: there nodes
 * starved of CPU for seconds commit writes after a short-lived client gave up on them, and
 * it would see none acknowledged.
 */
const OPERATION_TIMEOUT_MS = Math.round(WAIT_MS / 6);
/** Deadline of one attempt at one node before the client tries another (1 s by default). */
const ATTEMPT_TIMEOUT_MS = Math.round(WAIT_MS / 30);
/** Codes after which a write surely did not take effect: it was refused before the log. */
const WRITE_REFUSED = new Set(["invalid", "unauthenticated"]);

const decoder = new TextDecoder();

/** How the operations of a cycle ended. */
export interface OperationCounts {
  /** Completed with an answer. */
  ok: number;
  /** Failed, surely without effect (reads, refused writes). */
  fail: number;
  /** Outcome unknown (writes that timed out or lost their node). */
  unknown: number;
}

/** One cycle's recorded history. */
class CycleHistory {
  readonly recorder = new HistoryRecorder(OPERATIONS_PER_CYCLE_MAX);
  readonly keys: string[];
  readonly counts: OperationCounts = { ok: 0, fail: 0, unknown: 0 };
  /** Operations invoked so far; the recorder refuses more than its bound. */
  invoked = 0;
  /** Return times (ms, `performance.now()`) of acknowledged writes. */
  readonly writeAcks: number[] = [];

  constructor(cycle: number) {
    this.keys = Array.from({ length: KEYS_PER_CYCLE }, (_, i) => `c${cycle}/k${i}`);
  }
}

/** What one cycle leaves for the checker and the report. */
export interface CycleRecord {
  history: KvOperation[];
  counts: OperationCounts;
  /** Return times of acknowledged writes, in order. */
  writeAcks: number[];
}

/** Clients working on the current cycle's keys until `stop()`. */
export class RecordedWorkload {
  readonly #clients: BlixardClient[];
  #cycle: CycleHistory;
  #cycleNumber = 0;
  #stopping = false;
  readonly #loops: Promise<void>[];

  private constructor(clients: BlixardClient[]) {
    this.#clients = clients;
    this.#cycle = new CycleHistory(0);
    this.#loops = clients.map((client, index) => this.#run(client, index + 1));
  }

  /**
   * Connects `clientCount` clients with `connect` (client `index`, with this attempt
   * timeout; the caller spreads them over the members) and starts them at once.
   */
  static async start(
    clientCount: number,
    connect: (index: number, attemptTimeoutMs: number) => Promise<BlixardClient>,
  ): Promise<RecordedWorkload> {
    const clients: BlixardClient[] = [];
    try {
      for (let i = 0; i < clientCount; i++) clients.push(await connect(i, ATTEMPT_TIMEOUT_MS));
    } catch (error) {
      for (const client of clients) await client.close();
      throw error;
    }
    return new RecordedWorkload(clients);
  }

  /** Acknowledged writes of the current cycle so far. */
  get acknowledgedWrites(): number {
    return this.#cycle.writeAcks.length;
  }

  /** Waits until the current cycle has `count` more acknowledged writes, or `timeoutMs` passed. */
  async waitForWrites(count: number, timeoutMs: number): Promise<boolean> {
    const target = this.acknowledgedWrites + count;
    const deadline = performance.now() + timeoutMs;
    while (this.acknowledgedWrites < target) {
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  /**
   * Ends the current cycle: later operations go to the next cycle's keys; each of this
   * cycle's keys is read once more (recorded), and its history returned.
   */
  async endCycle(): Promise<CycleRecord> {
    const ended = this.#cycle;
    this.#cycleNumber++;
    this.#cycle = new CycleHistory(this.#cycleNumber);
    for (const key of ended.keys) {
      await this.#perform(this.#clients[0]!, 0, ended, { type: "get", key });
    }
    return { history: ended.recorder.history(), counts: ended.counts, writeAcks: ended.writeAcks };
  }

  /** Stops every client after its operation in flight, and closes them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#loops);
    for (const client of this.#clients) await client.close();
  }

  async #run(client: BlixardClient, clientId: number): Promise<void> {
    let sequence = 0;
    /** The last value this client saw per key: a compare-and-set expects it. */
    const lastSeen = new Map<string, string | null>();
    while (!this.#stopping) {
      const cycle = this.#cycle;
      if (cycle.invoked >= OPERATIONS_PER_CYCLE_MAX - this.#clients.length - KEYS_PER_CYCLE) {
        // A cycle that ran this long is stuck; the harness ends it by its own deadline.
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const key = cycle.keys[Math.floor(Math.random() * cycle.keys.length)]!;
      const value = `${clientId}.${++sequence}`;
      const draw = Math.random();
      const input: KvInput = draw < 0.45
        ? { type: "put", key, value }
        : draw < 0.75
        ? { type: "get", key }
        : draw < 0.9
        ? { type: "compareAndSet", key, expected: lastSeen.get(key) ?? null, value }
        : { type: "delete", key };
      const output = await this.#perform(client, clientId, cycle, input);
      if (output?.type === "value") lastSeen.set(key, output.value);
      if (output?.type === "compareAndSet" && output.current !== undefined) {
        lastSeen.set(key, output.current);
      }
      await new Promise((resolve) => setTimeout(resolve, THINK_MS));
    }
  }

  /** Runs one operation and records it; returns what the client was told, if anything. */
  async #perform(
    client: BlixardClient,
    clientId: number,
    cycle: CycleHistory,
    input: KvInput,
  ): Promise<KvOutput | null> {
    cycle.invoked++;
    const id = cycle.recorder.invoke(clientId, input, performance.now());
    let output: KvOutput;
    try {
      output = await execute(client, input);
    } catch (error) {
      const refused = error instanceof ClientError && WRITE_REFUSED.has(error.code);
      if (input.type === "get" || refused) {
        cycle.recorder.discard(id);
        cycle.counts.fail++;
      } else {
        cycle.counts.unknown++;
      }
      return null;
    }
    const now = performance.now();
    cycle.recorder.complete(id, output, now);
    cycle.counts.ok++;
    if (input.type !== "get") cycle.writeAcks.push(now);
    return output;
  }
}

async function execute(client: BlixardClient, input: KvInput): Promise<KvOutput> {
  const options = { timeoutMs: OPERATION_TIMEOUT_MS };
  switch (input.type) {
    case "put":
      await client.put(input.key, input.value, options);
      return { type: "ok" };
    case "get": {
      const value = await client.get(input.key, options);
      return { type: "value", value: value === null ? null : decoder.decode(value) };
    }
    case "delete": {
      const { existed } = await client.delete(input.key, options);
      return { type: "deleted", existed };
    }
    case "compareAndSet": {
      const result = await client.compareAndSet(
        input.key,
        { expected: input.expected, value: input.value },
        options,
      );
      return {
        type: "compareAndSet",
        succeeded: result.succeeded,
        current: result.current === null ? null : decoder.decode(result.current),
      };
    }
  }
}
