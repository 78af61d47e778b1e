/**
 * `StateStore`: the narrow storage interface under `KvStateMachine`. Two implementations:
 * `MemoryStateStore` (the simulator) and `SqliteStateStore` (the node, tables in the same
 * `blixard.db` as the Raft log, so that the applied index and the state changes commit in
 * the Raft storage's transaction).
 *
 * The store holds data; the rules (what a command does, when a session is evicted) live in
 * `KvStateMachine`, so both stores behave the same by construction.
 *
 * @module
 */

import type { ConfState, NodeId } from "../raft/types.ts";
import type { KvResult } from "./apply_result.ts";
import type { InviteRecord } from "./invites.ts";
import type { MemberInfo } from "./member_info.ts";

/** One key and its value. */
export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
}

/** How many keys `list` returns, and where it starts. */
export interface ListOptions {
  /** At most this many pairs, ≥ 1. */
  limit: number;
  /** Start after this key (for paging); from the start of the prefix when absent. */
  startAfter?: Uint8Array;
}

/**
 * A client's session (Raft thesis §6.3): its latest applied sequence number and that
 * command's result, kept so a retry returns the first result instead of applying twice.
 */
export interface ClientSession {
  clientId: string;
  /** The latest sequence number applied for this client. */
  sequence: number;
  /** The log index that last used the session; the oldest is evicted first. Unique. */
  index: number;
  /** The result of the command with `sequence`. */
  result: KvResult;
}

/** A removed member's key, refused by every member from the entry that removed it on. */
export interface RevokedKey {
  p2pNodeId: string;
  /** The index of the entry that removed the member. */
  index: number;
}

/** Storage for the key/value state machine. Writes must happen inside `transaction`. */
export interface StateStore {
  /** Runs `fn` so that its writes take effect together (see the implementations). */
  transaction<T>(fn: () => T): T;

  /** The value of `key`, or `null` when absent. */
  get(key: Uint8Array): Uint8Array | null;
  /** Sets `key` to `value`. */
  put(key: Uint8Array, value: Uint8Array): void;
  /** Removes `key`; true when it was present. */
  delete(key: Uint8Array): boolean;
  /** Pairs whose key starts with `prefix`, in byte order of the key. */
  list(prefix: Uint8Array, options: ListOptions): KeyValue[];

  /** Every member record, by node id. */
  memberInfos(): MemberInfo[];
  /** Creates or replaces the record of `info.nodeId`. */
  putMemberInfo(info: MemberInfo): void;
  /** Removes the record of `nodeId`, if any. */
  deleteMemberInfo(nodeId: NodeId): void;

  /** Every revoked key, oldest (lowest `index`) first. */
  revokedKeys(): RevokedKey[];
  /** Whether `p2pNodeId` is revoked. */
  isRevoked(p2pNodeId: string): boolean;
  /** Revokes `revoked.p2pNodeId` (again: its index is replaced). */
  revokeKey(revoked: RevokedKey): void;
  /** Forgets the revocation of `p2pNodeId`, if any. */
  forgetRevokedKey(p2pNodeId: string): void;

  /** Every invite record, by token hash. */
  invites(): InviteRecord[];
  /** The invite record of `tokenHash`, or `undefined`. */
  invite(tokenHash: string): InviteRecord | undefined;
  /** Creates or replaces the record of `record.tokenHash`. */
  putInvite(record: InviteRecord): void;
  /** Forgets the record of `tokenHash`, if any. */
  deleteInvite(tokenHash: string): void;

  /** The members that joined by a learner invite and stay learners, by node id. */
  invitedLearners(): NodeId[];
  /** Records that `nodeId` joined by a learner invite. */
  addInvitedLearner(nodeId: NodeId): void;
  /** Forgets that `nodeId` joined by a learner invite, if it did. */
  deleteInvitedLearner(nodeId: NodeId): void;

  /** The index of the last entry applied; 0 before any. */
  appliedIndex(): number;
  /** Records the index of the last entry applied. */
  setAppliedIndex(index: number): void;
  /** The configuration after the last applied entry. */
  appliedConfState(): ConfState;
  /** Records the configuration after the last applied entry. */
  setAppliedConfState(confState: ConfState): void;
  /** The cluster id written by `initCluster`, or `null` before it. */
  clusterId(): string | null;
  /** Records the cluster id. */
  setClusterId(clusterId: string): void;

  /** The session of `clientId`, or `null`. */
  session(clientId: string): ClientSession | null;
  /** Every session, oldest (lowest `index`) first. */
  sessions(): ClientSession[];
  /** How many sessions are kept. */
  sessionCount(): number;
  /** The session with the lowest `index`, or `null` when there is none. */
  oldestSession(): ClientSession | null;
  /** Creates or replaces the session of `session.clientId`. */
  putSession(session: ClientSession): void;
  /** Removes the session of `clientId`. */
  deleteSession(clientId: string): void;

  /**
   * Removes everything: keys, members, revoked keys, invites, invited learners, sessions,
   * cluster id; applied index 0.
   */
  clear(): void;
}
