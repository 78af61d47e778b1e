/**
 * `KvStateMachine`: the replicated state of a Blixard cluster: a key/value map, the member
 * records (id → P2P address), the cluster id, and client sessions for exactly-once
 * commands. It is deterministic: the same log applied on any node, to either store, gives
 * the same state and the same snapshot bytes. It reads no clock and no randomness.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import {
  applyMembershipChange,
  confStatesEqual,
  isMember,
  membershipChangeError,
} from "../raft/membership.ts";
import type { ConfState, Entry, MembershipEntry, NodeId, Snapshot } from "../raft/types.ts";
import type { ApplyResult, KvResult } from "./apply_result.ts";
import { bytesEqual } from "./byte_keys.ts";
import {
  type Command,
  type CreateInviteCommand,
  decodeCommand,
  type KvCommand,
} from "./commands.ts";
import {
  consumedInvite,
  decodeLearnerContext,
  INVITE_LIMITS,
  type InviteRecord,
  type InviteRefusal,
  inviteRefusal,
  type InviteRole,
  type InviteUse,
  isForgettable,
} from "./invites.ts";
import type { MemberInfo } from "./member_info.ts";
import { decodeStateImage, encodeStateImage, loadStateImage } from "./state_image.ts";
import type { KeyValue, ListOptions, StateStore } from "./state_store.ts";

/** Default for `KvStateMachineOptions.sessionsMax`. */
export const CLIENT_SESSIONS_MAX = 4096;

/**
 * Revoked keys kept; beyond it the oldest revocation is forgotten. Every removal adds one,
 * so over a long life the set must be bounded; a key revoked that long ago belongs to a
 * machine that had to hold the secret to come back, and rotating the secret shuts it out.
 */
export const REVOKED_KEYS_MAX = 4096;

/** The most pairs one `list` returns. */
export const LIST_LIMIT_MAX = 10_000;

/** Options of `KvStateMachine`. */
export interface KvStateMachineOptions {
  /**
   * Client sessions kept; beyond it the least recently used (by log index) is evicted.
   * Every node of a cluster must use the same value, or their states diverge.
   */
  sessionsMax?: number;
}

/** A member as clients see it: its role and, when known, its P2P address record. */
export interface Member {
  nodeId: NodeId;
  role: "voter" | "learner";
  info: MemberInfo | null;
}

/** The key/value state machine over a `StateStore`. */
export class KvStateMachine {
  readonly #store: StateStore;
  readonly #sessionsMax: number;

  /** A state machine over `store`, which holds its state (empty or from a previous run). */
  constructor(store: StateStore, options: KvStateMachineOptions = {}) {
    this.#store = store;
    this.#sessionsMax = options.sessionsMax ?? CLIENT_SESSIONS_MAX;
    assert(Number.isSafeInteger(this.#sessionsMax) && this.#sessionsMax >= 1, "sessionsMax >= 1");
  }

  /**
   * Applies the committed `entry`, which must be the one after `appliedIndex()`. Its effects
   * and the new applied index are written in one store transaction.
   */
  apply(entry: Entry): ApplyResult {
    return this.applyAll([entry])[0]!;
  }

  /**
   * Applies committed `entries` in order, the first being the one after `appliedIndex()`,
   * in one store transaction; the applied index is written once, after the last. This is
   * how the node applies a Ready: per entry it saves a savepoint and two statements.
   */
  applyAll(entries: readonly Entry[]): ApplyResult[] {
    if (entries.length === 0) return [];
    return this.#store.transaction(() => {
      let applied = this.#store.appliedIndex();
      const results = entries.map((entry) => {
        assert(
          entry.index === applied + 1,
          "entries are applied in order, once",
          { detail: () => `entry ${entry.index} after applied index ${applied}` },
        );
        const result = entry.type === "membership"
          ? this.#applyMembership(entry)
          : this.#applyData(entry.data, entry.index);
        applied = entry.index;
        return result;
      });
      this.#store.setAppliedIndex(applied);
      return results;
    });
  }

  /** The index of the last applied entry (0 before any). */
  appliedIndex(): number {
    return this.#store.appliedIndex();
  }

  /** The configuration after the last applied entry. */
  appliedConfState(): ConfState {
    return this.#store.appliedConfState();
  }

  /** The value of `key`, or `null` when absent. */
  get(key: Uint8Array): Uint8Array | null {
    return this.#store.get(key);
  }

  /**
   * Up to `options.limit` pairs (1…`LIST_LIMIT_MAX`) whose key starts with `prefix`, by
   * key, after `options.startAfter` when given (paging: the last key of the previous page).
   */
  list(prefix: Uint8Array, options: ListOptions): KeyValue[] {
    const limit = options.limit;
    assert(
      Number.isSafeInteger(limit) && limit >= 1 && limit <= LIST_LIMIT_MAX,
      "1 <= list limit <= LIST_LIMIT_MAX",
      { detail: () => `limit ${limit}` },
    );
    return this.#store.list(prefix, options);
  }

  /** Every member of the applied configuration, by node id. */
  members(): Member[] {
    const conf = this.#store.appliedConfState();
    const infos = new Map(this.#store.memberInfos().map((info) => [info.nodeId, info]));
    const member = (nodeId: NodeId, role: Member["role"]) => ({
      nodeId,
      role,
      info: infos.get(nodeId) ?? null,
    });
    return [
      ...conf.voters.map((id) => member(id, "voter")),
      ...conf.learners.map((id) => member(id, "learner")),
    ]
      .sort((a, b) => a.nodeId - b.nodeId);
  }

  /**
   * Whether `p2pNodeId` is the key of a removed member: every member refuses it from the
   * moment it applies the removal, whatever it proves.
   */
  isRevoked(p2pNodeId: string): boolean {
    return this.#store.isRevoked(p2pNodeId);
  }

  /** The revoked keys, oldest first. */
  revokedKeys(): string[] {
    return this.#store.revokedKeys().map((revoked) => revoked.p2pNodeId);
  }

  /** Every invite record (outstanding, used, revoked, expired), by token hash. */
  invites(): InviteRecord[] {
    return this.#store.invites();
  }

  /**
   * Why the invite whose token hashes to `tokenHash` cannot be used at `nowMs`, or `null`
   * when it can: what the leader checks before it proposes the entry that consumes it.
   */
  inviteRefusal(tokenHash: string, nowMs: number): InviteRefusal | null {
    return inviteRefusal(this.#store.invite(tokenHash), nowMs);
  }

  /**
   * Whether member `nodeId` joined by a learner invite (`blixard cluster invite --as
   * learner`): the autopilot never promotes it.
   */
  isInvitedLearner(nodeId: NodeId): boolean {
    return this.#store.invitedLearners().includes(nodeId);
  }

  /** The cluster id, or `null` before `initCluster` was applied. */
  clusterId(): string | null {
    return this.#store.clusterId();
  }

  /** The whole state as snapshot data, at `appliedIndex()`; the same bytes on every node. */
  snapshotData(): Uint8Array {
    return encodeStateImage(this.#store);
  }

  /**
   * Replaces the state with `snapshot`'s, atomically. Throws `StateImageError` when the
   * data is not an image, and an invariant violation when it does not match the metadata
   * or is older than the applied state (that would take back applied commands).
   */
  restore(snapshot: Snapshot): void {
    const { index, confState } = snapshot.metadata;
    const applied = this.#store.appliedIndex();
    assert(
      index >= applied,
      "a snapshot never takes the state back",
      { detail: () => `snapshot at index ${index}, applied index ${applied}` },
    );
    const image = decodeStateImage(snapshot.data);
    assert(
      image.appliedIndex === index,
      "snapshot data matches its metadata",
      { detail: () => `data at index ${image.appliedIndex}, metadata at ${index}` },
    );
    assert(
      confStatesEqual(image.confState, confState),
      "snapshot data matches its metadata",
      {
        detail: () =>
          `data configuration ${JSON.stringify(image.confState)}, metadata ${
            JSON.stringify(confState)
          }`,
      },
    );
    this.#store.transaction(() => loadStateImage(this.#store, image));
  }

  #applyData(data: Uint8Array, index: number): ApplyResult {
    // Raft §8: a new leader's empty entry carries no command.
    if (data.length === 0) return { type: "noop", index };
    const decoded = decodeCommand(data);
    if (!decoded.ok) return { type: "error", index, error: decoded.error };
    return this.#applyCommand(decoded.value, index);
  }

  #applyCommand(command: Command, index: number): ApplyResult {
    switch (command.type) {
      case "put":
      case "delete":
      case "compareAndSet":
        return this.#applyKvOnce(command, index);
      case "initCluster": {
        const current = this.#store.clusterId();
        if (current !== null && current !== command.clusterId) {
          return { type: "error", index, error: `the cluster id is already ${current}` };
        }
        this.#store.setClusterId(command.clusterId);
        return { type: "initCluster", index, clusterId: command.clusterId };
      }
      case "setMemberInfo": {
        const nodeId = command.info.nodeId;
        if (!isMember(this.#store.appliedConfState(), nodeId)) {
          return { type: "error", index, error: `node ${nodeId} is not a member` };
        }
        // A member's key is its identity (DESIGN.md section 6): only remove and re-join
        // may change it, never an address announcement.
        const known = this.#store.memberInfos().find((info) => info.nodeId === nodeId);
        if (known !== undefined && known.p2pNodeId !== command.info.p2pNodeId) {
          return {
            type: "error",
            index,
            error: `node ${nodeId} has P2P id ${known.p2pNodeId}; setMemberInfo cannot change it`,
          };
        }
        this.#store.putMemberInfo(command.info);
        return { type: "setMemberInfo", index, nodeId };
      }
      case "createInvite":
        return this.#createInvite(command, index);
      case "revokeInvite": {
        const record = this.#store.invite(command.tokenHash);
        if (record === undefined || record.state !== "active") {
          const state = record === undefined ? "unknown" : record.state;
          return { type: "error", index, error: `the invite is ${state}, not outstanding` };
        }
        this.#store.putInvite({ ...record, state: "revoked" });
        return { type: "revokeInvite", index };
      }
    }
  }

  /**
   * Records a new invite. Records long past their expiry are forgotten first (against the
   * leader's clock in the command, so every node forgets the same ones); the number kept
   * stays bounded, and a cluster full of outstanding invites refuses more.
   */
  #createInvite(command: CreateInviteCommand, index: number): ApplyResult {
    if (this.#store.invite(command.tokenHash) !== undefined) {
      return { type: "error", index, error: "an invite with this token hash exists" };
    }
    const records = this.#store.invites();
    let kept = records.length;
    for (const record of records) {
      if (isForgettable(record, command.nowMs)) {
        this.#store.deleteInvite(record.tokenHash);
        kept--;
      }
    }
    if (kept >= INVITE_LIMITS.recordsMax) {
      return {
        type: "error",
        index,
        error: `${kept} invites are kept, the most there may be: revoke unused ones ` +
          "(blixard cluster invites, blixard cluster revoke-invite) or wait for them to expire",
      };
    }
    this.#store.putInvite({
      tokenHash: command.tokenHash,
      role: command.role,
      expiresAtMs: command.expiresAtMs,
      usesLeft: command.uses,
      createdBy: command.createdBy,
      createdAtMs: command.nowMs,
      state: "active",
    });
    return { type: "createInvite", index };
  }

  /**
   * Consumes one use of an invite, in the entry that adds the learner it admits. The
   * refusal, when the invite is no longer usable (revoked or used up after the leader
   * checked it), is returned and the learner still added: a configuration change cannot be
   * undone by the state machine, so the leader removes that learner again. Otherwise, the
   * role the invite's record grants (never one the joiner asked for).
   */
  #consumeInvite(invite: InviteUse): { refusal: InviteRefusal } | { role: InviteRole } {
    const record = this.#store.invite(invite.tokenHash);
    const refusal = inviteRefusal(record, invite.nowMs);
    if (refusal !== null) return { refusal };
    this.#store.putInvite(consumedInvite(record!));
    return { role: record!.role };
  }

  /** Raft thesis §6.3: a command whose sequence number was already applied is not applied again. */
  #applyKvOnce(command: KvCommand, index: number): ApplyResult {
    const request = command.request;
    if (request === undefined) return this.#applyKv(command, index);
    const session = this.#store.session(request.clientId);
    if (session !== null && request.sequence === session.sequence) return session.result;
    if (session !== null && request.sequence < session.sequence) {
      return {
        type: "error",
        index,
        error:
          `client ${request.clientId} sequence ${request.sequence} is older than its latest, ${session.sequence}`,
      };
    }
    const result = this.#applyKv(command, index);
    this.#store.putSession({
      clientId: request.clientId,
      sequence: request.sequence,
      index,
      result,
    });
    if (this.#store.sessionCount() > this.#sessionsMax) {
      this.#store.deleteSession(this.#store.oldestSession()!.clientId);
    }
    return result;
  }

  #applyKv(command: KvCommand, index: number): KvResult {
    const key = command.key;
    switch (command.type) {
      case "put":
        this.#store.put(key, command.value);
        return { type: "put", index };
      case "delete":
        return { type: "delete", index, existed: this.#store.delete(key) };
      case "compareAndSet": {
        const current = this.#store.get(key);
        const expected = command.expected;
        const matches = current === null || expected === null
          ? current === expected
          : bytesEqual(current, expected);
        if (matches) this.#store.put(key, command.value);
        return {
          type: "compareAndSet",
          index,
          succeeded: matches,
          current: matches ? command.value : current,
        };
      }
    }
  }

  /** Revokes the key of member `nodeId`, removed by entry `index`; the set stays bounded. */
  #revokeKeyOf(nodeId: NodeId, index: number): void {
    const info = this.#store.memberInfos().find((member) => member.nodeId === nodeId);
    if (info === undefined) return;
    this.#store.revokeKey({ p2pNodeId: info.p2pNodeId, index });
    const revoked = this.#store.revokedKeys();
    for (const oldest of revoked.slice(0, Math.max(0, revoked.length - REVOKED_KEYS_MAX))) {
      this.#store.forgetRevokedKey(oldest.p2pNodeId);
    }
  }

  #applyMembership(entry: MembershipEntry): ApplyResult {
    const change = entry.change;
    const before = this.#store.appliedConfState();
    const invalid = membershipChangeError(before, change);
    // The core validated the change against the same configuration when it was appended.
    assert(
      invalid === null,
      "committed membership changes are valid",
      { detail: () => `entry ${entry.index}: ${invalid}` },
    );
    const confState = applyMembershipChange(before, change);
    this.#store.setAppliedConfState(confState);
    let error: string | null = null;
    let refusal: InviteRefusal | null = null;
    if (change.type === "addLearner") {
      const decoded = decodeLearnerContext(change.context);
      if (!decoded.ok) error = decoded.error;
      else if (decoded.value.member.nodeId !== change.nodeId) {
        error =
          `member info names node ${decoded.value.member.nodeId}, the entry adds node ${change.nodeId}`;
      } else {
        const invite = decoded.value.invite;
        const consumed = invite === null ? null : this.#consumeInvite(invite);
        if (consumed !== null && "refusal" in consumed) refusal = consumed.refusal;
        // The newest admission decides: a learner invite keeps the member a learner.
        const asLearner = consumed !== null && "role" in consumed && consumed.role === "learner";
        if (asLearner) this.#store.addInvitedLearner(change.nodeId);
        else this.#store.deleteInvitedLearner(change.nodeId);
        this.#store.putMemberInfo(decoded.value.member);
      }
    } else if (change.type === "removeNode") {
      this.#revokeKeyOf(change.nodeId, entry.index);
      this.#store.deleteMemberInfo(change.nodeId);
      this.#store.deleteInvitedLearner(change.nodeId);
    } else if (change.type === "promoteLearner") {
      // A voter is no learner, whatever admitted it (this build's autopilot never proposes
      // the promotion of an invited learner).
      this.#store.deleteInvitedLearner(change.nodeId);
    }
    const result = { type: "membership" as const, index: entry.index, confState, error };
    return refusal === null ? result : { ...result, inviteRefusal: refusal };
  }
}
