/**
 * A linearizability checker for histories of a key/value store, in the manner of
 * porcupine (Athalye): the search of Wing & Gong with Lowe's memoization of
 * (set of linearized operations, model state), applied to each key separately because a
 * history is linearizable exactly when its per-key sub-histories are (Herlihy & Wing's
 * locality; Horn & Kroening's P-compositionality).
 *
 * An operation whose outcome the client never learned (it timed out, or its node crashed)
 * is treated as possibly effective: its return time is +infinity and any output is accepted,
 * so the search may place it anywhere after its invocation, including after everything,
 * which is the same as never taking effect.
 *
 * Unknown outcomes are what make the search blow up (every subset of them, placed anywhere,
 * is a state of the search). These measures, each preserving the answer, keep them in check:
 * - unknown operations nothing observes are set aside before the search (they go last);
 * - an unknown operation is placed only where it changes the key, and only right before an
 *   operation that may need its effect (any other order has an equivalent that is tried);
 * - candidates with a known outcome are tried first, then unknown ones leading to a state
 *   some known operation needs, then the rest;
 * - a search state is skipped when one differing only by fewer unknown operations placed
 *   was explored, and a branch is abandoned once a state some known operation needs can
 *   no longer be written.
 *
 * The search is exponential in the worst case, so it runs under a step budget and answers
 * "unknown" when the budget runs out instead of hanging. When a key's history is rejected,
 * the checker shrinks it, by reductions that keep the rejection sound, to a small set of
 * operations that still cannot be linearized and reports those as the explanation.
 *
 * @module
 */

/** What a client asked for. Every operation names one key. */
export type KvInput =
  | { type: "put"; key: string; value: string }
  | { type: "get"; key: string }
  | { type: "delete"; key: string }
  | {
    type: "compareAndSet";
    key: string;
    /** The value the key must hold for the swap to happen; `null` means "absent". */
    expected: string | null;
    value: string;
  };

/**
 * What a client was told. `put` answers `ok`; `delete` answers `ok`, or `deleted` when the
 * store also says whether the key existed; `get` answers its value or `null` when absent;
 * `compareAndSet` whether it succeeded and, when the store says, the key's value after it.
 */
export type KvOutput =
  | { type: "ok" }
  | { type: "deleted"; existed: boolean }
  | { type: "value"; value: string | null }
  | { type: "compareAndSet"; succeeded: boolean; current?: string | null };

/** One client operation with its invocation and return times. */
export interface KvOperation {
  /** Unique within a history; explanations refer to operations by it. */
  id: number;
  /** The client that issued it (for traces only: the check does not need it). */
  clientId: number;
  input: KvInput;
  /** What the client was told, or `null` when it never learned the outcome. */
  output: KvOutput | null;
  invokeTime: number;
  /** When the client learned the outcome; ignored (treated as +infinity) when `output` is `null`. */
  returnTime: number;
}

/** The state of one key in the sequential model: its value, or `null` when absent. */
export type RegisterState = string | null;

/** The outcome of one step of the sequential model. */
export type RegisterStep = { legal: true; state: RegisterState } | { legal: false };

/** Limits of one check. */
export interface CheckOptions {
  /** Search steps allowed over all keys before answering "unknown". */
  stepsMax?: number;
  /** Search steps allowed for shrinking a rejected key's history to an explanation. */
  explainStepsMax?: number;
}

/** The verdict on a whole history. */
export type LinearizabilityResult =
  | { type: "linearizable"; operationsChecked: number; keysChecked: number; steps: number }
  | {
    type: "notLinearizable";
    key: string;
    /** Operations of `key` that together cannot be linearized, in invocation order. */
    operations: KvOperation[];
    /**
     * True when the explanation could not be shrunk further: dropping any remaining read,
     * or any write no remaining operation observes, would make the rest linearizable.
     */
    minimal: boolean;
    /** A readable account of the rejection, one operation per line. */
    explanation: string;
    operationsChecked: number;
    steps: number;
  }
  | { type: "unknown"; key: string; reason: string; operationsChecked: number; steps: number };

/** The default search budget: a few seconds of work on histories far larger than the simulator's. */
export const CHECK_STEPS_MAX_DEFAULT = 5_000_000;
/** The default budget for shrinking a rejected history. */
export const EXPLAIN_STEPS_MAX_DEFAULT = 2_000_000;

/**
 * One step of the sequential specification of a key: a register with put, get, delete and
 * compare-and-set. A `null` output (outcome unknown) is accepted from any state; the step
 * still applies the operation's effect, which is a function of the state alone.
 */
export function stepRegister(
  state: RegisterState,
  input: KvInput,
  output: KvOutput | null,
): RegisterStep {
  switch (input.type) {
    case "put":
      return { legal: true, state: input.value };
    case "delete":
      if (output?.type === "deleted" && output.existed !== (state !== null)) {
        return { legal: false };
      }
      return { legal: true, state: null };
    case "get":
      if (output === null) return { legal: true, state };
      return output.type === "value" && output.value === state
        ? { legal: true, state }
        : { legal: false };
    case "compareAndSet": {
      const succeeded = state === input.expected;
      const after = succeeded ? input.value : state;
      if (output === null) return { legal: true, state: after };
      if (output.type !== "compareAndSet" || output.succeeded !== succeeded) {
        return { legal: false };
      }
      if (output.current !== undefined && output.current !== after) return { legal: false };
      return { legal: true, state: after };
    }
  }
}

/**
 * Decides whether `history` is linearizable with respect to the key/value register model.
 * Keys are checked in sorted order; the first key rejected, or the first that exhausts the
 * budget, decides the answer.
 */
export function checkLinearizability(
  history: readonly KvOperation[],
  options: CheckOptions = {},
): LinearizabilityResult {
  assertWellFormed(history);
  const stepsMax = options.stepsMax ?? CHECK_STEPS_MAX_DEFAULT;
  const explainStepsMax = options.explainStepsMax ?? EXPLAIN_STEPS_MAX_DEFAULT;
  const byKey = partitionByKey(history);
  let steps = 0;
  for (const key of [...byKey.keys()].sort()) {
    const operations = byKey.get(key) ?? [];
    const outcome = searchLinearization(operations, stepsMax - steps);
    steps += outcome.steps;
    if (outcome.type === "unknown") {
      const reason = `budget exceeded: ${stepsMax} search steps ran out on key ${
        JSON.stringify(key)
      } (${operations.length} operations)`;
      return { type: "unknown", key, reason, operationsChecked: history.length, steps };
    }
    if (outcome.type === "notLinearizable") {
      const rejection = explainRejection(key, operations, explainStepsMax);
      return {
        type: "notLinearizable",
        key,
        operations: rejection.operations,
        minimal: rejection.minimal,
        explanation: rejection.explanation,
        operationsChecked: history.length,
        steps,
      };
    }
  }
  return {
    type: "linearizable",
    operationsChecked: history.length,
    keysChecked: byKey.size,
    steps,
  };
}

/** The outcome of searching one key's history. */
export type SearchOutcome =
  | { type: "linearizable"; steps: number; order: KvOperation[] }
  | { type: "notLinearizable"; steps: number }
  | { type: "unknown"; steps: number };

/**
 * Searches for a linearization of the operations of a single key (Wing & Gong, with Lowe's
 * cache). On success `order` is the witness: the operations in linearization order.
 */
export function searchLinearization(
  operations: readonly KvOperation[],
  stepsMax: number,
): SearchOutcome {
  const { effective, unobserved } = setAsideUnobserved(operations);
  const outcome = searchEffective(effective, stepsMax);
  if (outcome.type !== "linearizable") return outcome;
  return { type: "linearizable", steps: outcome.steps, order: [...outcome.order, ...unobserved] };
}

/** The search proper, over the operations that were not set aside. */
function searchEffective(effective: readonly KvOperation[], stepsMax: number): SearchOutcome {
  const list = EventList.build(effective);
  const memo = new SearchMemo(effective);
  const demand = new StateDemand(effective);
  const stack: { node: number; state: RegisterState; pass: Pass }[] = [];
  let knownLeft = effective.filter((operation) => operation.output !== null).length;
  let state: RegisterState = null;
  let node = list.first();
  let pass: Pass = "known";
  let steps = 0;
  // Once every operation with a known outcome is placed, the rest (unknown outcomes, which
  // accept any output and never return) can follow in any order.
  while (knownLeft > 0) {
    steps += 1;
    if (steps > stepsMax) return { type: "unknown", steps };
    // A state some operation needs can no longer be reached from here: nothing below can succeed.
    const dead = demand.impossibleFrom(state);
    if (list.isCall(node) && !dead) {
      const index = list.operationOf(node);
      const operation = effective[index] as KvOperation;
      const step = stepRegister(state, operation.input, operation.output);
      const previous = stack.at(-1);
      const afterUnknown = previous !== undefined &&
        effective[list.operationOf(previous.node)]?.output === null;
      const allowed = !afterUnknown || needsPreviousEffect(operation, previous.state);
      if (
        step.legal && allowed && passOf(operation, state, step.state, demand) === pass &&
        memo.placeIfUncovered(index, step.state)
      ) {
        stack.push({ node, state, pass });
        if (operation.output !== null) knownLeft -= 1;
        demand.count(operation, -1);
        state = step.state;
        list.lift(node);
        node = list.first();
        pass = "known";
      } else {
        node = list.next(node);
      }
    } else if (pass !== "other" && !dead) {
      // Every candidate of this pass was tried: on to the next pass.
      pass = pass === "known" ? "useful" : "other";
      node = list.first();
    } else {
      // An operation returned before any order could place it: undo the latest choice.
      const top = stack.pop();
      if (top === undefined) return { type: "notLinearizable", steps };
      const index = list.operationOf(top.node);
      const operation = effective[index] as KvOperation;
      if (operation.output !== null) knownLeft += 1;
      demand.count(operation, 1);
      state = top.state;
      memo.unplace(index);
      list.unlift(top.node);
      node = list.next(top.node);
      pass = top.pass;
    }
  }
  const placed = stack.map((entry) => effective[list.operationOf(entry.node)] as KvOperation);
  const rest = effective.filter((operation) => !placed.includes(operation));
  return { type: "linearizable", steps, order: [...placed, ...rest] };
}

/**
 * Whether `operation`, placed right after an unknown-outcome operation that took the key
 * from `before` to another state, may need that operation's effect. If not, the order is
 * redundant and need not be tried: after a blind write the unknown operation was useless
 * (it may as well go last), and a read that is also legal in `before` could have come
 * first (which the search tries anyway).
 */
function needsPreviousEffect(operation: KvOperation, before: RegisterState): boolean {
  const { input, output } = operation;
  const blindWrite = (input.type === "put" || input.type === "delete") &&
    (output === null || output.type === "ok");
  if (blindWrite) return false;
  if (output !== null && isReadOnly(operation)) return !stepRegister(before, input, output).legal;
  return true;
}

/**
 * The passes in which a search level tries its candidates: those with a known outcome,
 * which the history constrains; then unknown-outcome ones that lead to a state a remaining
 * known operation observes; then the other unknown-outcome ones. Any order of candidates
 * gives the same answer; this one keeps a history full of unknown outcomes from sending
 * the search through every subset of them before it places the operation that decides.
 */
type Pass = "known" | "useful" | "other";

/**
 * The pass in which `operation` is tried when it would take the key from `before` to
 * `after`, or `null` when it need not be tried there at all: an unknown-outcome operation
 * that changes nothing can always be moved to the end of the order instead.
 */
function passOf(
  operation: KvOperation,
  before: RegisterState,
  after: RegisterState,
  demand: StateDemand,
): Pass | null {
  if (operation.output !== null) return "known";
  if (after === before) return null;
  return demand.wanted(after) ? "useful" : "other";
}

/**
 * What the operations not yet placed need and offer: the states known-outcome operations
 * observe exactly (a get's value, a swap's expected or reported value), and the values
 * operations may write. A state some operation needs, that the key does not hold and that
 * nothing left can write, can never come: the search below that point is dead.
 */
class StateDemand {
  readonly #needs = new Map<RegisterState, number>();
  readonly #writers = new Map<RegisterState, number>();
  /** States needed that nothing left can write. */
  readonly #starved = new Set<RegisterState>();

  constructor(operations: readonly KvOperation[]) {
    for (const operation of operations) this.count(operation, 1);
  }

  /** Counts `operation` `delta` more times (-1 when it is placed, +1 when taken back). */
  count(operation: KvOperation, delta: number): void {
    const needed = neededState(operation);
    if (needed !== undefined) this.#add(this.#needs, needed, delta);
    if (!isReadOnly(operation)) this.#add(this.#writers, writtenValue(operation.input), delta);
  }

  /** True when an operation not yet placed observes `state`. */
  wanted(state: RegisterState): boolean {
    return (this.#needs.get(state) ?? 0) > 0;
  }

  /** True when, from `state`, some needed state can no longer be reached. */
  impossibleFrom(state: RegisterState): boolean {
    return this.#starved.size > 1 || (this.#starved.size === 1 && !this.#starved.has(state));
  }

  #add(counts: Map<RegisterState, number>, state: RegisterState, delta: number): void {
    counts.set(state, (counts.get(state) ?? 0) + delta);
    const starved = (this.#needs.get(state) ?? 0) > 0 && (this.#writers.get(state) ?? 0) === 0;
    if (starved) this.#starved.add(state);
    else this.#starved.delete(state);
  }
}

/** The state a known-outcome operation can only be placed in, if it names one exactly. */
function neededState(operation: KvOperation): RegisterState | undefined {
  const { input, output } = operation;
  if (output?.type === "value") return output.value;
  if (output?.type === "compareAndSet" && input.type === "compareAndSet") {
    return output.succeeded ? input.expected : output.current;
  }
  return undefined;
}

/**
 * Sets aside the unknown-outcome operations nothing can observe, before the search: they
 * only widen it. The rest is linearizable exactly when the whole is: a linearization of
 * the rest extends to the whole by placing them last (they return at +infinity and accept
 * any output), and `removableSoundly` gives the converse. Unknown gets never need a place.
 */
function setAsideUnobserved(
  operations: readonly KvOperation[],
): { effective: KvOperation[]; unobserved: KvOperation[] } {
  const unobserved = operations.filter((operation) =>
    operation.output === null && operation.input.type === "get"
  );
  let effective = operations.filter((operation) => !unobserved.includes(operation));
  for (let changed = true; changed;) {
    changed = false;
    for (const operation of effective) {
      if (operation.output !== null || !removableSoundly(operation, effective)) continue;
      effective = effective.filter((other) => other !== operation);
      unobserved.push(operation);
      changed = true;
    }
  }
  return { effective, unobserved };
}

/** Renders one operation for traces and explanations. */
export function formatOperation(operation: KvOperation): string {
  const input = operation.input;
  const key = JSON.stringify(input.key);
  const call = input.type === "put"
    ? `put(${key}, ${JSON.stringify(input.value)})`
    : input.type === "compareAndSet"
    ? `compareAndSet(${key}, ${formatValue(input.expected)} -> ${JSON.stringify(input.value)})`
    : `${input.type}(${key})`;
  const returned = operation.output === null ? "∞)" : `${operation.returnTime}]`;
  return `#${operation.id} client ${operation.clientId} [${operation.invokeTime}, ${returned} ${call} → ${
    formatOutput(operation.output)
  }`;
}

function formatOutput(output: KvOutput | null): string {
  if (output === null) return "unknown";
  if (output.type === "ok") return "ok";
  if (output.type === "deleted") {
    return output.existed ? "deleted (existed)" : "deleted (was absent)";
  }
  if (output.type === "value") return formatValue(output.value);
  const current = output.current === undefined ? "" : `, now ${formatValue(output.current)}`;
  return `${output.succeeded ? "succeeded" : "failed"}${current}`;
}

function formatValue(value: string | null): string {
  return value === null ? "absent" : JSON.stringify(value);
}

function assertWellFormed(history: readonly KvOperation[]): void {
  const ids = new Set<number>();
  for (const operation of history) {
    if (ids.has(operation.id)) {
      throw new Error(`history: operation id ${operation.id} appears twice`);
    }
    ids.add(operation.id);
    if (!Number.isFinite(operation.invokeTime)) {
      throw new Error(
        `history: operation #${operation.id} has invoke time ${operation.invokeTime}`,
      );
    }
    if (operation.output === null) continue;
    if (!(operation.returnTime >= operation.invokeTime)) {
      throw new Error(
        `history: operation #${operation.id} returns at ${operation.returnTime}, before its invocation at ${operation.invokeTime}`,
      );
    }
    const expectedOutputs = operation.input.type === "get"
      ? ["value"]
      : operation.input.type === "compareAndSet"
      ? ["compareAndSet"]
      : operation.input.type === "delete"
      ? ["ok", "deleted"]
      : ["ok"];
    if (!expectedOutputs.includes(operation.output.type)) {
      throw new Error(
        `history: operation #${operation.id} is a ${operation.input.type} with a ${operation.output.type} output`,
      );
    }
  }
}

function partitionByKey(history: readonly KvOperation[]): Map<string, KvOperation[]> {
  const byKey = new Map<string, KvOperation[]>();
  for (const operation of history) {
    const operations = byKey.get(operation.input.key);
    if (operations === undefined) byKey.set(operation.input.key, [operation]);
    else operations.push(operation);
  }
  return byKey;
}

/** Why a key's history was rejected: a small set of its operations that cannot be linearized. */
interface Rejection {
  /** The original operations, in invocation order. */
  operations: KvOperation[];
  minimal: boolean;
  explanation: string;
}

/**
 * Shrinks a rejected history to the operations that explain the rejection, using only
 * reductions that preserve it soundly (if the reduced history cannot be linearized, neither
 * can the original):
 * - cut at the earliest return after which no linearization exists, turning operations
 *   still pending there into unknown-outcome ones (linearizability is prefix-closed);
 * - drop a read (a get, or a compare-and-set that failed), since a read changes no state;
 * - drop a write whose value no remaining operation that may follow it reads, compares
 *   against or reports (a delete reporting that the key existed counts as seeing every
 *   value), while no compare-and-set known to have failed (without reporting the value it
 *   found) that may follow it remains whose outcome the write could change.
 * Dropping a write that someone observed would not be sound: it could turn a legal read
 * into an impossible one and "explain" a violation that is not there.
 */
function explainRejection(
  key: string,
  operations: readonly KvOperation[],
  stepsMax: number,
): Rejection {
  const budget = { remaining: stepsMax };
  const cutTime = earliestRejectedCut(operations, budget);
  let core = cutAt(operations, cutTime);
  let changed = true;
  while (changed && budget.remaining > 0) {
    changed = false;
    for (const operation of [...core].reverse()) {
      if (!removableSoundly(operation, core)) continue;
      const candidate = core.filter((other) => other !== operation);
      if (isRejected(candidate, budget)) {
        core = candidate;
        changed = true;
      }
    }
  }
  const minimal = budget.remaining > 0;
  const original = new Map(operations.map((operation) => [operation.id, operation]));
  const chosen = core
    .map((operation) => original.get(operation.id) as KvOperation)
    .sort((a, b) => a.invokeTime - b.invokeTime || a.id - b.id);
  const lines = chosen.map((operation) => {
    const note = operation.output !== null && operation.returnTime === cutTime
      ? "   ← returns at the cut"
      : operation.output === null || operation.returnTime > cutTime
      ? "   (still pending at the cut)"
      : "";
    return `  ${formatOperation(operation)}${note}`;
  });
  const omitted = operations.length - chosen.length;
  const shrunk = minimal
    ? "none of the remaining reads or unobserved writes can be dropped"
    : "not shrunk further: explanation budget spent";
  const header = `key ${JSON.stringify(key)}: not linearizable once time ${cutTime} is reached. ` +
    `No order of these ${chosen.length} operations respects both real time and the register's ` +
    `sequential behaviour (${omitted} other operations on the key omitted; ${shrunk}):`;
  return { operations: chosen, minimal, explanation: [header, ...lines].join("\n") };
}

/** The earliest return time at which the history cut there is already rejected. */
function earliestRejectedCut(
  operations: readonly KvOperation[],
  budget: { remaining: number },
): number {
  const returnTimes = [
    ...new Set(
      operations.filter((operation) => operation.output !== null).map((operation) =>
        operation.returnTime
      ),
    ),
  ].sort((a, b) => a - b);
  // The whole history is rejected, and cutting at the last return loses only unknown-outcome
  // operations invoked after it, which a linearization may always place last.
  let rejected = returnTimes.length - 1;
  let low = 0;
  while (low < rejected && budget.remaining > 0) {
    const middle = Math.floor((low + rejected) / 2);
    if (isRejected(cutAt(operations, returnTimes[middle] as number), budget)) rejected = middle;
    else low = middle + 1;
  }
  return returnTimes[rejected] ?? Infinity;
}

/**
 * The history as it stood at `time`: later invocations dropped, pending operations unknown.
 * Exported for its property test: a linearizable history stays so when cut.
 */
export function cutAt(operations: readonly KvOperation[], time: number): KvOperation[] {
  return operations
    .filter((operation) => operation.invokeTime <= time)
    .map((operation) =>
      operation.output !== null && operation.returnTime <= time
        ? operation
        : { ...operation, output: null, returnTime: Infinity }
    );
}

/**
 * True when dropping `operation` from `core` keeps a rejection sound: if `core` is
 * linearizable, so is `core` without it. Exported for its property test.
 */
export function removableSoundly(operation: KvOperation, core: readonly KvOperation[]): boolean {
  if (isReadOnly(operation)) return true;
  const written = writtenValue(operation.input);
  const others = core.filter((other) => other !== operation);
  // The states the key may hold just before this write: initial (absent) or another write's value.
  const possibleBefore = new Set(
    others.filter((other) => !isReadOnly(other)).map((other) => writtenValue(other.input)),
  );
  possibleBefore.add(null);
  // Only an operation that may come after this write can see its value: one that returned
  // before the write was invoked is ordered before it.
  const mayFollow = others.filter((other) =>
    other.output === null || other.returnTime >= operation.invokeTime
  );
  return mayFollow.every((other) => {
    if (observes(other, written)) return false;
    const output = other.output;
    if (other.input.type !== "compareAndSet" || output?.type !== "compareAndSet") return true;
    // A swap that reported the value it found is pinned to that state, which is not this
    // write's; an unknown one that would now succeed can move to the end instead. Only a
    // swap known to have failed, without the value it found, could succeed if the key kept
    // its earlier value.
    if (output.succeeded || output.current !== undefined) return true;
    return !possibleBefore.has(other.input.expected);
  });
}

/** True when `operation`'s input or output could depend on the key holding `value`. */
function observes(operation: KvOperation, value: RegisterState): boolean {
  const { input, output } = operation;
  if (input.type === "compareAndSet") {
    const current = output?.type === "compareAndSet" ? output.current : undefined;
    return input.expected === value || current === value;
  }
  if (output?.type === "value") return output.value === value;
  // A delete that reports whether the key existed saw absent or "some value".
  if (output?.type === "deleted") return output.existed === (value !== null);
  return false;
}

/** A get, or a compare-and-set known to have failed: neither changes the key. */
function isReadOnly(operation: KvOperation): boolean {
  const { input, output } = operation;
  if (input.type === "get") return true;
  return input.type === "compareAndSet" && output?.type === "compareAndSet" && !output.succeeded;
}

function writtenValue(input: KvInput): RegisterState {
  return input.type === "put" || input.type === "compareAndSet" ? input.value : null;
}

function isRejected(operations: readonly KvOperation[], budget: { remaining: number }): boolean {
  const outcome = searchLinearization(operations, budget.remaining);
  budget.remaining -= outcome.steps;
  return outcome.type === "notLinearizable";
}

/**
 * The history as a doubly linked list of call and return events in time order, with
 * Knuth's dancing links so that taking an operation out (`lift`) and putting it back
 * (`unlift`, in reverse order) are constant time. Node 0 is the head sentinel; node
 * `2i+1` is the call of operation `i`, node `2i+2` its return.
 */
class EventList {
  static readonly NONE = -1;
  private readonly nextNode: Int32Array;
  private readonly previousNode: Int32Array;

  private constructor(order: readonly number[]) {
    this.nextNode = new Int32Array(order.length + 1);
    this.previousNode = new Int32Array(order.length + 1);
    let previous = 0;
    for (const node of order) {
      this.nextNode[previous] = node;
      this.previousNode[node] = previous;
      previous = node;
    }
    this.nextNode[previous] = EventList.NONE;
  }

  /**
   * Orders events by time. At equal times calls come before returns, so operations that
   * merely touch count as concurrent: the checker never rejects on a tie.
   */
  static build(operations: readonly KvOperation[]): EventList {
    const events: { node: number; time: number; isCall: boolean }[] = [];
    operations.forEach((operation, index) => {
      const returnTime = operation.output === null ? Infinity : operation.returnTime;
      events.push({ node: 2 * index + 1, time: operation.invokeTime, isCall: true });
      events.push({ node: 2 * index + 2, time: returnTime, isCall: false });
    });
    events.sort((a, b) =>
      a.time !== b.time
        ? a.time - b.time
        : a.isCall !== b.isCall
        ? (a.isCall ? -1 : 1)
        : a.node - b.node
    );
    return new EventList(events.map((event) => event.node));
  }

  isEmpty(): boolean {
    return this.nextNode[0] === EventList.NONE;
  }

  first(): number {
    return this.nextNode[0] as number;
  }

  next(node: number): number {
    const next = this.nextNode[node] as number;
    // Every call precedes its own return, so a walk from a call meets a return first.
    if (next === EventList.NONE) throw new Error("EventList: walked past the last event");
    return next;
  }

  isCall(node: number): boolean {
    return node % 2 === 1;
  }

  operationOf(node: number): number {
    return Math.floor((node - 1) / 2);
  }

  /** Removes a call and its return. */
  lift(call: number): void {
    this.unlink(call);
    this.unlink(call + 1);
  }

  /** Undoes the latest `lift`, which must have been of `call`. */
  unlift(call: number): void {
    this.relink(call + 1);
    this.relink(call);
  }

  private unlink(node: number): void {
    const previous = this.previousNode[node] as number;
    const next = this.nextNode[node] as number;
    this.nextNode[previous] = next;
    if (next !== EventList.NONE) this.previousNode[next] = previous;
  }

  private relink(node: number): void {
    const previous = this.previousNode[node] as number;
    const next = this.nextNode[node] as number;
    this.nextNode[previous] = node;
    if (next !== EventList.NONE) this.previousNode[next] = node;
  }
}

/**
 * The operations placed so far, and the search states explored, so that no state is
 * explored twice (Lowe's memoization). A state is the set of known-outcome operations
 * placed, the key's value, and the set U of unknown-outcome operations placed. It is
 * covered by an explored state that differs only by placing a subset of U: whatever
 * completes this state completes that one too, with the missing unknown-outcome
 * operations placed last (they accept any output and never return). Sets are bitsets; the
 * known set has an incrementally maintained 64-bit Zobrist hash, so a lookup is one map
 * access plus comparisons on collisions.
 */
class SearchMemo {
  readonly #unknown: boolean[];
  readonly #knownWords: Uint32Array;
  readonly #unknownWords: Uint32Array;
  readonly #keysLow: Uint32Array;
  readonly #keysHigh: Uint32Array;
  #hashLow = 0;
  #hashHigh = 0;
  readonly #explored = new Map<string, { known: Uint32Array; unknown: Uint32Array }[]>();

  constructor(operations: readonly KvOperation[]) {
    const size = operations.length;
    this.#unknown = operations.map((operation) => operation.output === null);
    this.#knownWords = new Uint32Array(Math.ceil(size / 32));
    this.#unknownWords = new Uint32Array(Math.ceil(size / 32));
    this.#keysLow = new Uint32Array(size);
    this.#keysHigh = new Uint32Array(size);
    // A fixed SplitMix32-style sequence: the keys only need to be well spread, not secret.
    let seed = 0x9e3779b9;
    for (let i = 0; i < size; i++) {
      seed = (seed + 0x9e3779b9) >>> 0;
      this.#keysLow[i] = mix32(seed);
      this.#keysHigh[i] = mix32(seed ^ 0x85ebca6b);
    }
  }

  /**
   * Places operation `index`, the key then holding `state`, and returns true, unless an
   * explored state covers the result: then it places nothing and returns false.
   */
  placeIfUncovered(index: number, state: RegisterState): boolean {
    this.#toggle(index);
    const key = `${this.#hashLow}:${this.#hashHigh}:${state === null ? "-" : `+${state}`}`;
    const explored = this.#explored.get(key);
    const covered = explored?.some((earlier) =>
      sameWords(earlier.known, this.#knownWords) && isSubset(earlier.unknown, this.#unknownWords)
    );
    if (covered === true) {
      this.#toggle(index);
      return false;
    }
    const entry = { known: this.#knownWords.slice(), unknown: this.#unknownWords.slice() };
    if (explored === undefined) this.#explored.set(key, [entry]);
    else explored.push(entry);
    return true;
  }

  /** Takes operation `index` back. */
  unplace(index: number): void {
    this.#toggle(index);
  }

  #toggle(index: number): void {
    const words = this.#unknown[index] === true ? this.#unknownWords : this.#knownWords;
    const word = index >>> 5;
    words[word] = (words[word] as number) ^ (1 << (index & 31));
    if (this.#unknown[index] === true) return;
    this.#hashLow = (this.#hashLow ^ (this.#keysLow[index] as number)) >>> 0;
    this.#hashHigh = (this.#hashHigh ^ (this.#keysHigh[index] as number)) >>> 0;
  }
}

function isSubset(subset: Uint32Array, of: Uint32Array): boolean {
  for (let i = 0; i < subset.length; i++) {
    if (((subset[i] as number) & ~(of[i] as number)) !== 0) return false;
  }
  return true;
}

function mix32(value: number): number {
  let x = value >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
