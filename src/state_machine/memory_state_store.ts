/**
 * `MemoryStateStore`: the in-memory `StateStore`, for the simulator and tests.
 *
 * @module
 */

import { emptyConfState } from "../raft/membership.ts";
import type { ConfState, NodeId } from "../raft/types.ts";
import { assert } from "../util/assert.ts";
import { hasPrefix, keySuccessor } from "./byte_keys.ts";
import { canonicalMemberInfo, type MemberInfo } from "./member_info.ts";
import { canonicalInviteRecord, type InviteRecord } from "./invites.ts";
import type {
  ClientSession,
  KeyValue,
  ListOptions,
  RevokedKey,
  StateStore,
} from "./state_store.ts";

const HEX_BY_BYTE = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** Lowercase hex; its string order is the byte order of the key, and prefixes stay prefixes. */
function hex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += HEX_BY_BYTE[byte];
  return text;
}

/**
 * A `StateStore` in plain maps. `transaction` only runs `fn`: a write that throws halfway
 * is not undone, which is fine where a throw from `apply` stops the simulated node.
 */
export class MemoryStateStore implements StateStore {
  /** Hex of every key, sorted, for prefix ranges. */
  #sortedKeys: string[] = [];
  #pairs = new Map<string, KeyValue>();
  #members = new Map<NodeId, MemberInfo>();
  #revoked = new Map<string, number>();
  #invites = new Map<string, InviteRecord>();
  #invitedLearners = new Set<NodeId>();
  /** Insertion order is `index` order: a session is re-inserted whenever it is used. */
  #sessions = new Map<string, ClientSession>();
  /** The highest `index` ever given to `putSession`; keeps the map's order honest. */
  #newestSessionIndex = 0;
  #appliedIndex = 0;
  #confState: ConfState = emptyConfState();
  #clusterId: string | null = null;

  transaction<T>(fn: () => T): T {
    return fn();
  }

  get(key: Uint8Array): Uint8Array | null {
    return this.#pairs.get(hex(key))?.value.slice() ?? null;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const name = hex(key);
    if (!this.#pairs.has(name)) this.#sortedKeys.splice(this.#lowerBound(name), 0, name);
    this.#pairs.set(name, { key: key.slice(), value: value.slice() });
  }

  delete(key: Uint8Array): boolean {
    const name = hex(key);
    if (!this.#pairs.delete(name)) return false;
    this.#sortedKeys.splice(this.#lowerBound(name), 1);
    return true;
  }

  list(prefix: Uint8Array, options: ListOptions): KeyValue[] {
    assert(options.limit >= 1, "list limit >= 1", { detail: () => `limit ${options.limit}` });
    const after = options.startAfter;
    const start = after === undefined || hex(after) < hex(prefix) ? prefix : keySuccessor(after);
    const result: KeyValue[] = [];
    for (let i = this.#lowerBound(hex(start)); i < this.#sortedKeys.length; i += 1) {
      const pair = this.#pairs.get(this.#sortedKeys[i]!)!;
      if (!hasPrefix(pair.key, prefix) || result.length === options.limit) break;
      result.push({ key: pair.key.slice(), value: pair.value.slice() });
    }
    return result;
  }

  memberInfos(): MemberInfo[] {
    return [...this.#members.values()].sort((a, b) => a.nodeId - b.nodeId).map(canonicalMemberInfo);
  }

  putMemberInfo(info: MemberInfo): void {
    this.#members.set(info.nodeId, canonicalMemberInfo(info));
  }

  deleteMemberInfo(nodeId: NodeId): void {
    this.#members.delete(nodeId);
  }

  revokedKeys(): RevokedKey[] {
    return [...this.#revoked].map(([p2pNodeId, index]) => ({ p2pNodeId, index }))
      .sort((a, b) => a.index - b.index || (a.p2pNodeId < b.p2pNodeId ? -1 : 1));
  }

  isRevoked(p2pNodeId: string): boolean {
    return this.#revoked.has(p2pNodeId);
  }

  revokeKey(revoked: RevokedKey): void {
    this.#revoked.set(revoked.p2pNodeId, revoked.index);
  }

  forgetRevokedKey(p2pNodeId: string): void {
    this.#revoked.delete(p2pNodeId);
  }

  invites(): InviteRecord[] {
    return [...this.#invites.values()].sort((a, b) => a.tokenHash < b.tokenHash ? -1 : 1)
      .map(canonicalInviteRecord);
  }

  invite(tokenHash: string): InviteRecord | undefined {
    const record = this.#invites.get(tokenHash);
    return record === undefined ? undefined : canonicalInviteRecord(record);
  }

  putInvite(record: InviteRecord): void {
    this.#invites.set(record.tokenHash, canonicalInviteRecord(record));
  }

  deleteInvite(tokenHash: string): void {
    this.#invites.delete(tokenHash);
  }

  invitedLearners(): NodeId[] {
    return [...this.#invitedLearners].sort((a, b) => a - b);
  }

  addInvitedLearner(nodeId: NodeId): void {
    this.#invitedLearners.add(nodeId);
  }

  deleteInvitedLearner(nodeId: NodeId): void {
    this.#invitedLearners.delete(nodeId);
  }

  appliedIndex(): number {
    return this.#appliedIndex;
  }

  setAppliedIndex(index: number): void {
    this.#appliedIndex = index;
  }

  appliedConfState(): ConfState {
    return { voters: [...this.#confState.voters], learners: [...this.#confState.learners] };
  }

  setAppliedConfState(confState: ConfState): void {
    this.#confState = { voters: [...confState.voters], learners: [...confState.learners] };
  }

  clusterId(): string | null {
    return this.#clusterId;
  }

  setClusterId(clusterId: string): void {
    this.#clusterId = clusterId;
  }

  session(clientId: string): ClientSession | null {
    return this.#sessions.get(clientId) ?? null;
  }

  sessions(): ClientSession[] {
    return [...this.#sessions.values()];
  }

  sessionCount(): number {
    return this.#sessions.size;
  }

  oldestSession(): ClientSession | null {
    return this.#sessions.values().next().value ?? null;
  }

  putSession(session: ClientSession): void {
    assert(
      session.index > this.#newestSessionIndex,
      "sessions are used in index order",
      { detail: () => `session index ${session.index} after ${this.#newestSessionIndex}` },
    );
    this.#newestSessionIndex = session.index;
    this.#sessions.delete(session.clientId);
    this.#sessions.set(session.clientId, { ...session });
  }

  deleteSession(clientId: string): void {
    this.#sessions.delete(clientId);
  }

  clear(): void {
    this.#sortedKeys = [];
    this.#pairs.clear();
    this.#members.clear();
    this.#revoked.clear();
    this.#invites.clear();
    this.#invitedLearners.clear();
    this.#sessions.clear();
    this.#newestSessionIndex = 0;
    this.#appliedIndex = 0;
    this.#confState = emptyConfState();
    this.#clusterId = null;
  }

  /** The position of the first sorted key not below `name`. */
  #lowerBound(name: string): number {
    let low = 0;
    let high = this.#sortedKeys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#sortedKeys[middle]! < name) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
