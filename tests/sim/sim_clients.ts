/**
 * `SimClients`: clients of the simulated cluster. Each runs one operation at a time
 * (put, get, delete, compare-and-set on a few shared keys, so that they contend), records
 * it in the history, and retries it until it completes or its deadline passes:
 *
 * - a write is proposed to the node the client believes leads; it completes when that node
 *   applies the entry at the index and term it was given. Retries carry the same client
 *   session sequence (Raft thesis §6.3), so a write that committed twice applies once.
 * - a read goes through ReadIndex on any node (followers forward it); it is served from
 *   that node's state machine once it has applied up to the read index.
 *
 * An operation whose deadline passes stays pending: its outcome is unknown to the checker.
 *
 * @module
 */

import type { Entry, NodeId, ReadState, RejectReason } from "../../src/raft/types.ts";
import type { ApplyResult } from "../../src/state_machine/apply_result.ts";
import { encodeCommand, type KvCommand } from "../../src/state_machine/commands.ts";
import type { HistoryRecorder } from "./history_recorder.ts";
import type { KvInput, KvOutput } from "./linearizability.ts";
import type { SimCluster } from "./sim_cluster.ts";
import type { SimRandom } from "./sim_random.ts";

/** How clients behave. Times are in simulated time units. */
export interface ClientOptions {
  clients: number;
  keys: number;
  /** Pause between one operation's end and the next one's start: uniform in `[0, thinkTimeMax]`. */
  thinkTimeMax: number;
  /** How long one attempt may take before the client tries again elsewhere. */
  attemptTimeout: number;
  /** How long an operation may take before the client gives up on it (outcome unknown). */
  operationTimeout: number;
  /**
   * Test-only sabotage: reads are served from the chosen node's state at once, without
   * ReadIndex. Such reads can be stale, so runs with it show that the checker catches them.
   */
  staleReads?: boolean;
}

type Attempt =
  | { type: "write"; nodeId: NodeId; index: number; term: number; until: number }
  | { type: "read"; nodeId: NodeId; requestId: number; readIndex: number | null; until: number };

interface Operation {
  historyId: number;
  input: KvInput;
  /** The encoded command of a write, the same bytes on every retry. */
  command: Uint8Array | null;
  attempt: Attempt | null;
  retryAt: number;
  deadline: number;
}

interface Client {
  id: number;
  /** The session name the state machine deduplicates by. */
  session: string;
  sequence: number;
  leaderHint: NodeId;
  operation: Operation | null;
  nextOperationAt: number;
  /** The last value this client saw per key: what its compare-and-set expects. */
  lastSeen: Map<string, string | null>;
}

/** Time a client waits before retrying after a refusal, so that it does not spin. */
const RETRY_PAUSE = 5;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The simulated clients and their bookkeeping. */
export class SimClients {
  readonly #cluster: SimCluster;
  readonly #random: SimRandom;
  readonly #recorder: HistoryRecorder;
  readonly #options: ClientOptions;
  readonly #clients: Client[];
  /** Write attempts by `nodeId:index`, resolved when that node applies the index. */
  readonly #writes = new Map<string, Client>();
  /** Read attempts by request id. */
  readonly #reads = new Map<number, Client>();
  #nextRequestId = 1;
  #issuing = true;
  /** Keys client 1 still has to read at the end of a run. */
  #finalReads: string[] = [];
  /** Writes acknowledged to clients, for the final durability check. */
  readonly acknowledged: Entry[] = [];

  constructor(
    cluster: SimCluster,
    options: { random: SimRandom; recorder: HistoryRecorder; clients: ClientOptions },
  ) {
    this.#cluster = cluster;
    this.#random = options.random;
    this.#recorder = options.recorder;
    this.#options = options.clients;
    this.#clients = Array.from({ length: options.clients.clients }, (_, i) => ({
      id: i + 1,
      session: `client-${i + 1}`,
      sequence: 0,
      leaderHint: 0,
      operation: null,
      nextOperationAt: 0,
      lastSeen: new Map(),
    }));
  }

  /** Stops starting new operations; those under way go on until they end. */
  stopIssuing(): void {
    this.#issuing = false;
  }

  /** True when no operation is under way. */
  idle(): boolean {
    return this.#clients.every((client) => client.operation === null);
  }

  /** Starts a read of every key by client 1 (which must be idle): the final check that nothing was lost. */
  readEveryKey(): void {
    const reader = this.#clients[0];
    if (reader === undefined) return;
    this.#finalReads = Array.from({ length: this.#options.keys }, (_, i) => `k${i}`);
    this.#startNextFinalRead(reader);
  }

  /** True while final reads are still to run. */
  get finalReadsPending(): boolean {
    return this.#finalReads.length > 0 || this.#clients[0]?.operation !== null;
  }

  /** One unit of time for every client: start, retry or give up operations. */
  step(): void {
    const now = this.#cluster.now;
    for (const client of this.#clients) {
      const operation = client.operation;
      if (operation === null) {
        if (client.id === 1 && this.#finalReads.length > 0) this.#startNextFinalRead(client);
        else if (this.#issuing && now >= client.nextOperationAt) this.#start(client);
        continue;
      }
      if (now >= operation.deadline) {
        this.#abandon(client, operation);
        continue;
      }
      // A timed-out attempt, or one whose node died (its connection would break), is retried.
      const attempt = operation.attempt;
      if (
        attempt !== null &&
        (now >= attempt.until || this.#cluster.live(attempt.nodeId) === undefined)
      ) {
        this.#dropAttempt(operation);
        client.leaderHint = 0;
      }
      if (operation.attempt === null && now >= operation.retryAt) this.#attempt(client, operation);
    }
  }

  /** A node applied an entry: complete or fail the write attempt that proposed it there. */
  applied(nodeId: NodeId, entry: Entry, result: ApplyResult): void {
    const attemptName = `${nodeId}:${entry.index}`;
    const client = this.#writes.get(attemptName);
    const operation = client?.operation;
    if (client === undefined || operation == null || operation.attempt?.type !== "write") return;
    this.#writes.delete(attemptName);
    if (operation.attempt.term !== entry.term) {
      // Another entry took the index: this attempt never committed. Try again.
      operation.attempt = null;
      operation.retryAt = this.#cluster.now;
      return;
    }
    this.acknowledged.push(entry);
    this.#complete(client, operation, writeOutput(result, operation.input));
  }

  /** A node completed ReadIndex requests: note the index each read waits for. */
  readStates(nodeId: NodeId, readStates: readonly ReadState[]): void {
    for (const readState of readStates) {
      const attempt = this.#reads.get(readState.requestId)?.operation?.attempt;
      if (
        attempt?.type === "read" && attempt.nodeId === nodeId &&
        attempt.requestId === readState.requestId
      ) {
        attempt.readIndex = readState.index;
      }
    }
    this.serveReads();
  }

  /** Serves every read whose node has applied up to its read index. */
  serveReads(): void {
    for (const [requestId, client] of this.#reads) {
      const operation = client.operation;
      const attempt = operation?.attempt;
      if (operation == null || attempt?.type !== "read" || attempt.readIndex === null) continue;
      const node = this.#cluster.live(attempt.nodeId);
      if (node === undefined || node.stateMachine.appliedIndex() < attempt.readIndex) continue;
      this.#reads.delete(requestId);
      const value = node.stateMachine.get(encoder.encode(operation.input.key));
      this.#complete(client, operation, {
        type: "value",
        value: value === null ? null : decoder.decode(value),
      });
    }
  }

  #start(client: Client): void {
    const key = `k${this.#random.integer(0, this.#options.keys - 1)}`;
    const input = this.#randomInput(client, key);
    client.sequence += 1;
    const command = input.type === "get" ? null : encodeCommand(toCommand(input, client));
    const now = this.#cluster.now;
    const historyId = this.#recorder.invoke(client.id, input, now);
    client.operation = {
      historyId,
      input,
      command,
      attempt: null,
      retryAt: now,
      deadline: now + this.#options.operationTimeout,
    };
    this.#attempt(client, client.operation);
  }

  #startNextFinalRead(client: Client): void {
    const key = this.#finalReads.shift();
    if (key === undefined) return;
    const now = this.#cluster.now;
    const input: KvInput = { type: "get", key };
    const historyId = this.#recorder.invoke(client.id, input, now);
    client.operation = {
      historyId,
      input,
      command: null,
      attempt: null,
      retryAt: now,
      deadline: now + this.#options.operationTimeout,
    };
    this.#attempt(client, client.operation);
  }

  #randomInput(client: Client, key: string): KvInput {
    const value = `c${client.id}-${client.sequence + 1}`;
    const draw = this.#random.integer(1, 100);
    if (draw <= 40) return { type: "get", key };
    if (draw <= 70) return { type: "put", key, value };
    if (draw <= 90) {
      return { type: "compareAndSet", key, expected: client.lastSeen.get(key) ?? null, value };
    }
    return { type: "delete", key };
  }

  #attempt(client: Client, operation: Operation): void {
    const node = this.#pickNode(client, operation.input.type === "get");
    const now = this.#cluster.now;
    if (node === undefined) {
      operation.retryAt = now + RETRY_PAUSE;
      return;
    }
    const until = now + this.#options.attemptTimeout;
    if (operation.command === null && this.#options.staleReads === true) {
      const value = node.stateMachine.get(encoder.encode(operation.input.key));
      this.#complete(client, operation, {
        type: "value",
        value: value === null ? null : decoder.decode(value),
      });
      return;
    }
    if (operation.command === null) {
      const requestId = this.#nextRequestId++;
      const started = node.core.readIndex(requestId);
      if (!started.ok) return this.#refused(client, operation, started.reason);
      operation.attempt = { type: "read", nodeId: node.id, requestId, readIndex: null, until };
      this.#reads.set(requestId, client);
      return;
    }
    const proposed = node.core.propose(operation.command);
    if (!proposed.ok) return this.#refused(client, operation, proposed.reason);
    operation.attempt = {
      type: "write",
      nodeId: node.id,
      index: proposed.index,
      term: proposed.term,
      until,
    };
    this.#writes.set(`${node.id}:${proposed.index}`, client);
  }

  /** Reads go to any node half of the time, to exercise ReadIndex forwarding from followers. */
  #pickNode(client: Client, isRead: boolean) {
    const hinted = this.#cluster.live(client.leaderHint);
    if (hinted !== undefined && !(isRead && this.#random.chance(0.5))) return hinted;
    const nodes = this.#cluster.liveNodes();
    return nodes.length === 0 ? undefined : this.#random.pick(nodes);
  }

  #refused(client: Client, operation: Operation, reason: RejectReason): void {
    client.leaderHint = reason.leaderId;
    operation.retryAt = this.#cluster.now + RETRY_PAUSE;
  }

  #dropAttempt(operation: Operation): void {
    const attempt = operation.attempt;
    if (attempt?.type === "write") this.#writes.delete(`${attempt.nodeId}:${attempt.index}`);
    if (attempt?.type === "read") this.#reads.delete(attempt.requestId);
    operation.attempt = null;
  }

  #complete(client: Client, operation: Operation, output: KvOutput): void {
    this.#dropAttempt(operation);
    const now = this.#cluster.now;
    this.#recorder.complete(operation.historyId, output, now);
    if (output.type === "value") client.lastSeen.set(operation.input.key, output.value);
    if (output.type === "compareAndSet" && output.current !== undefined) {
      client.lastSeen.set(operation.input.key, output.current);
    }
    client.operation = null;
    client.nextOperationAt = now + this.#random.integer(0, this.#options.thinkTimeMax);
    this.#cluster.trace(
      `client ${client.id}: #${operation.historyId} ${operation.input.type} ${operation.input.key} → ${
        JSON.stringify(output)
      }`,
    );
  }

  #abandon(client: Client, operation: Operation): void {
    this.#dropAttempt(operation);
    client.operation = null;
    client.nextOperationAt = this.#cluster.now;
    this.#cluster.trace(
      `client ${client.id}: #${operation.historyId} ${operation.input.type} ${operation.input.key} gave up (outcome unknown)`,
    );
  }
}

function toCommand(input: KvInput, client: Client): KvCommand {
  const request = { clientId: client.session, sequence: client.sequence };
  const key = encoder.encode(input.key);
  switch (input.type) {
    case "put":
      return { type: "put", key, value: encoder.encode(input.value), request };
    case "delete":
      return { type: "delete", key, request };
    case "compareAndSet": {
      const expected = input.expected === null ? null : encoder.encode(input.expected);
      return { type: "compareAndSet", key, expected, value: encoder.encode(input.value), request };
    }
    case "get":
      throw new Error("a get is not a command: it is served by ReadIndex");
  }
}

/** What the client is told for a write, from the state machine's result. */
function writeOutput(result: ApplyResult, input: KvInput): KvOutput {
  if (result.type === "put" && input.type === "put") return { type: "ok" };
  if (result.type === "delete" && input.type === "delete") {
    return { type: "deleted", existed: result.existed };
  }
  if (result.type === "compareAndSet" && input.type === "compareAndSet") {
    const current = result.current === null ? null : decoder.decode(result.current);
    return { type: "compareAndSet", succeeded: result.succeeded, current };
  }
  throw new Error(`a ${input.type} was applied with result ${JSON.stringify(result)}`);
}
