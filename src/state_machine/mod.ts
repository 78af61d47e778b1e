/**
 * The replicated key/value state machine of a Blixard cluster.
 *
 * - `KvStateMachine` applies committed entries: key/value commands with exactly-once client
 *   sessions, the cluster id, and member records from membership entries. It is
 *   deterministic: nodes that applied the same log hold byte-identical snapshot data.
 * - `StateStore` is where it keeps its state: `MemoryStateStore` for the simulator,
 *   `SqliteStateStore` for the node, in the Raft storage's own database so that a Ready's
 *   persist and apply commit in one transaction (`SqliteStorage.transaction`).
 * - `encodeCommand`/`decodeCommand` and `encodeMemberInfo`/`decodeMemberInfo` are the wire
 *   formats of a normal entry's data and of an `addLearner` entry's context.
 *
 * ```ts
 * const storage = SqliteStorage.open(dataDir);
 * const machine = new KvStateMachine(new SqliteStateStore(storage));
 * storage.transaction(() => {
 *   storage.persist({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
 *   if (ready.snapshot !== null) machine.restore(ready.snapshot);
 *   for (const entry of ready.committedEntries) results.push(machine.apply(entry));
 * });
 * ```
 *
 * @module
 */

export type {
  ApplyResult,
  CompareAndSetResult,
  DeleteResult,
  KvResult,
  PutResult,
} from "./apply_result.ts";
export {
  type ClientRequest,
  type Command,
  COMMAND_LIMITS,
  decodeCommand,
  encodeCommand,
  InvalidCommandError,
  type KvCommand,
} from "./commands.ts";
export {
  CLIENT_SESSIONS_MAX,
  KvStateMachine,
  type KvStateMachineOptions,
  LIST_LIMIT_MAX,
  type Member,
} from "./kv_state_machine.ts";
export {
  type Decoded,
  decodeMemberInfo,
  encodeMemberInfo,
  MEMBER_INFO_LIMITS,
  type MemberInfo,
  memberInfoSchema,
} from "./member_info.ts";
export { MemoryStateStore } from "./memory_state_store.ts";
export { SqliteStateStore } from "./sqlite_state_store.ts";
export { StateImageError } from "./state_image.ts";
export type { ClientSession, KeyValue, ListOptions, StateStore } from "./state_store.ts";
