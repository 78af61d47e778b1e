/**
 * `SqliteStateStore`: the node's `StateStore`, in tables of the Raft storage's own
 * `blixard.db`. Every write runs inside `SqliteStorage.transaction`, so the applied index,
 * the key/value changes and the Raft state of one Ready commit together with one fsync
 * (DESIGN.md section 10).
 *
 * @module
 */

import type { StatementSync } from "node:sqlite";
import { assert } from "../util/assert.ts";
import type { ConfState, NodeId } from "../raft/types.ts";
import { encodeConfState, parseConfState, type SqliteStorage } from "../storage/sqlite_storage.ts";
import { decodeKvResult, encodeKvResult } from "./apply_result.ts";
import { compareBytes, keySuccessor, prefixEnd } from "./byte_keys.ts";
import { decodeMemberInfo, encodeMemberInfo, type MemberInfo } from "./member_info.ts";
import { decodeInviteRecord, encodeInviteRecord, type InviteRecord } from "./invites.ts";
import type {
  ClientSession,
  KeyValue,
  ListOptions,
  RevokedKey,
  StateStore,
} from "./state_store.ts";

/** The layout of the state machine tables this build reads and writes. */
export const STATE_SCHEMA_VERSION = 1;

const SCHEMA_SQL = `
  CREATE TABLE sm_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    applied_index INTEGER NOT NULL, conf_state TEXT NOT NULL, cluster_id TEXT);
  CREATE TABLE sm_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE sm_member (node_id INTEGER PRIMARY KEY, info BLOB NOT NULL);
  CREATE TABLE sm_session (
    client_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL,
    last_index INTEGER NOT NULL UNIQUE, result BLOB NOT NULL);
  INSERT INTO sm_state (id, applied_index, conf_state, cluster_id)
    VALUES (1, 0, '{"voters":[],"learners":[]}', NULL);
  INSERT INTO meta (name, value) VALUES ('state_schema_version', ${STATE_SCHEMA_VERSION});
`;

/**
 * Revoked keys came after schema version 1 and are added to its databases in place: a
 * table an older build does not read leaves its reading of the others unchanged.
 */
const REVOKED_SQL = `
  CREATE TABLE IF NOT EXISTS sm_revoked (
    p2p_node_id TEXT PRIMARY KEY, revoked_index INTEGER NOT NULL) WITHOUT ROWID;
`;

/** Invites came after revoked keys, and are added in place the same way. */
const INVITE_SQL = `
  CREATE TABLE IF NOT EXISTS sm_invite (token_hash TEXT PRIMARY KEY, record BLOB NOT NULL)
    WITHOUT ROWID;
`;

/** Members invited as learners came after invites, and are added in place the same way. */
const INVITED_LEARNER_SQL = `
  CREATE TABLE IF NOT EXISTS sm_invited_learner (node_id INTEGER PRIMARY KEY);
`;

interface SessionRow {
  client_id: string;
  sequence: number;
  last_index: number;
  result: Uint8Array;
}

/** The state machine's tables in an open `SqliteStorage`. */
export class SqliteStateStore implements StateStore {
  readonly #storage: SqliteStorage;
  readonly #statements: ReturnType<typeof prepareStatements>;

  /**
   * Creates the tables on first use and checks them. Throws `StorageCorruptionError` when
   * they are damaged: unknown schema version, unreadable rows, or an applied index beyond
   * the Raft commit index (applied entries are always committed ones).
   */
  constructor(storage: SqliteStorage) {
    this.#storage = storage;
    createOrCheckSchema(storage);
    this.#statements = prepareStatements(storage);
    this.#checkRows();
  }

  transaction<T>(fn: () => T): T {
    return this.#storage.transaction(fn);
  }

  get(key: Uint8Array): Uint8Array | null {
    const row = this.#statements.selectValue.get(key) as { value: Uint8Array } | undefined;
    return row?.value ?? null;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.#write(this.#statements.upsertValue, key, value);
  }

  delete(key: Uint8Array): boolean {
    return this.#write(this.#statements.deleteValue, key).changes > 0;
  }

  list(prefix: Uint8Array, options: ListOptions): KeyValue[] {
    assert(options.limit >= 1, "list limit >= 1", { detail: () => `limit ${options.limit}` });
    const after = options.startAfter;
    const successor = after === undefined ? prefix : keySuccessor(after);
    const low = compareBytes(successor, prefix) > 0 ? successor : prefix;
    const high = prefixEnd(prefix);
    const rows = high === null
      ? this.#statements.listFrom.all(low, options.limit)
      : this.#statements.listRange.all(low, high, options.limit);
    return (rows as unknown as KeyValue[]).map(({ key, value }) => ({ key, value }));
  }

  memberInfos(): MemberInfo[] {
    const rows = this.#statements.selectMembers.all() as unknown as { info: Uint8Array }[];
    return rows.map((row) => this.#decodeMember(row.info));
  }

  putMemberInfo(info: MemberInfo): void {
    this.#write(this.#statements.upsertMember, info.nodeId, encodeMemberInfo(info));
  }

  deleteMemberInfo(nodeId: NodeId): void {
    this.#write(this.#statements.deleteMember, nodeId);
  }

  revokedKeys(): RevokedKey[] {
    const rows = this.#statements.selectRevoked.all() as unknown as {
      p2p_node_id: string;
      revoked_index: number;
    }[];
    return rows.map((row) => ({ p2pNodeId: row.p2p_node_id, index: row.revoked_index }));
  }

  isRevoked(p2pNodeId: string): boolean {
    return this.#statements.selectRevokedKey.get(p2pNodeId) !== undefined;
  }

  revokeKey(revoked: RevokedKey): void {
    this.#write(this.#statements.upsertRevoked, revoked.p2pNodeId, revoked.index);
  }

  forgetRevokedKey(p2pNodeId: string): void {
    this.#write(this.#statements.deleteRevoked, p2pNodeId);
  }

  invites(): InviteRecord[] {
    const rows = this.#statements.selectInvites.all() as unknown as { record: Uint8Array }[];
    return rows.map((row) => this.#decodeInvite(row.record));
  }

  invite(tokenHash: string): InviteRecord | undefined {
    const row = this.#statements.selectInvite.get(tokenHash) as { record: Uint8Array } | undefined;
    return row === undefined ? undefined : this.#decodeInvite(row.record);
  }

  putInvite(record: InviteRecord): void {
    this.#write(this.#statements.upsertInvite, record.tokenHash, encodeInviteRecord(record));
  }

  deleteInvite(tokenHash: string): void {
    this.#write(this.#statements.deleteInvite, tokenHash);
  }

  invitedLearners(): NodeId[] {
    const rows = this.#statements.selectInvitedLearners.all() as unknown as { node_id: number }[];
    return rows.map((row) => row.node_id);
  }

  addInvitedLearner(nodeId: NodeId): void {
    this.#write(this.#statements.insertInvitedLearner, nodeId);
  }

  deleteInvitedLearner(nodeId: NodeId): void {
    this.#write(this.#statements.deleteInvitedLearner, nodeId);
  }

  appliedIndex(): number {
    return (this.#statements.selectApplied.get() as { applied_index: number }).applied_index;
  }

  setAppliedIndex(index: number): void {
    this.#write(this.#statements.updateApplied, index);
  }

  appliedConfState(): ConfState {
    const row = this.#statements.selectConfState.get() as { conf_state: string };
    const confState = parseConfState(row.conf_state);
    if (confState === null) {
      throw this.#storage.corruption(
        `sm_state.conf_state ${row.conf_state} is not a configuration`,
      );
    }
    return confState;
  }

  setAppliedConfState(confState: ConfState): void {
    this.#write(this.#statements.updateConfState, encodeConfState(confState));
  }

  clusterId(): string | null {
    return (this.#statements.selectClusterId.get() as { cluster_id: string | null }).cluster_id;
  }

  setClusterId(clusterId: string): void {
    this.#write(this.#statements.updateClusterId, clusterId);
  }

  session(clientId: string): ClientSession | null {
    const row = this.#statements.selectSession.get(clientId) as SessionRow | undefined;
    return row === undefined ? null : this.#decodeSession(row);
  }

  sessions(): ClientSession[] {
    const rows = this.#statements.selectSessions.all() as unknown as SessionRow[];
    return rows.map((row) => this.#decodeSession(row));
  }

  sessionCount(): number {
    return (this.#statements.countSessions.get() as { count: number }).count;
  }

  oldestSession(): ClientSession | null {
    const row = this.#statements.selectOldestSession.get() as SessionRow | undefined;
    return row === undefined ? null : this.#decodeSession(row);
  }

  putSession(session: ClientSession): void {
    const result = encodeKvResult(session.result);
    this.#write(
      this.#statements.upsertSession,
      session.clientId,
      session.sequence,
      session.index,
      result,
    );
  }

  deleteSession(clientId: string): void {
    this.#write(this.#statements.deleteSession, clientId);
  }

  clear(): void {
    assert(this.#storage.inTransaction(), "state store writes happen inside a transaction");
    this.#storage.database.exec(`
      DELETE FROM sm_kv; DELETE FROM sm_member; DELETE FROM sm_session; DELETE FROM sm_revoked;
      DELETE FROM sm_invite; DELETE FROM sm_invited_learner;
      UPDATE sm_state SET applied_index = 0, conf_state = '{"voters":[],"learners":[]}', cluster_id = NULL;
    `);
  }

  /** Runs a write; outside a transaction it would commit (and fsync) on its own. */
  #write(statement: StatementSync, ...parameters: (number | string | Uint8Array)[]) {
    assert(this.#storage.inTransaction(), "state store writes happen inside a transaction");
    return statement.run(...parameters);
  }

  #decodeMember(bytes: Uint8Array): MemberInfo {
    const decoded = decodeMemberInfo(bytes);
    if (!decoded.ok) throw this.#storage.corruption(`sm_member row: ${decoded.error}`);
    return decoded.value;
  }

  #decodeInvite(bytes: Uint8Array): InviteRecord {
    const decoded = decodeInviteRecord(bytes);
    if (!decoded.ok) throw this.#storage.corruption(`sm_invite row: ${decoded.error}`);
    return decoded.value;
  }

  #decodeSession(row: SessionRow): ClientSession {
    try {
      const result = decodeKvResult(row.result);
      return { clientId: row.client_id, sequence: row.sequence, index: row.last_index, result };
    } catch (error) {
      throw this.#storage.corruption(
        `sm_session row of ${row.client_id}: ${(error as Error).message}`,
      );
    }
  }

  /** Reads every row once so that damage is reported at open, not in the middle of apply. */
  #checkRows(): void {
    const applied = this.appliedIndex();
    const commit = this.#storage.initialState().hardState.commit;
    if (applied > commit) {
      throw this.#storage.corruption(
        `applied index ${applied} is beyond the commit index ${commit}`,
      );
    }
    this.appliedConfState();
    this.memberInfos();
    this.invites();
    this.sessions();
  }
}

function createOrCheckSchema(storage: SqliteStorage): void {
  const row = storage.database.prepare("SELECT value FROM meta WHERE name = 'state_schema_version'")
    .get() as
      | { value: number }
      | undefined;
  if (row === undefined) {
    storage.transaction(() => storage.database.exec(SCHEMA_SQL));
  } else if (row.value !== STATE_SCHEMA_VERSION) {
    throw storage.corruption(
      `state machine schema version ${row.value} is unknown to this build (it reads ` +
        `${STATE_SCHEMA_VERSION}); run the blixard release that wrote it`,
    );
  }
  // Tables that came after schema version 1, each added in place when missing.
  const addedTables: [string, string][] = [
    ["sm_revoked", REVOKED_SQL],
    ["sm_invite", INVITE_SQL],
    ["sm_invited_learner", INVITED_LEARNER_SQL],
  ];
  const hasTable = storage.database.prepare(
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
  );
  for (const [table, sql] of addedTables) {
    if (hasTable.get(table) === undefined) storage.transaction(() => storage.database.exec(sql));
  }
  const hasState = storage.database.prepare("SELECT 1 FROM sm_state WHERE id = 1").get();
  if (hasState === undefined) throw storage.corruption("the sm_state row is missing");
}

function prepareStatements(storage: SqliteStorage) {
  const prepare = (sql: string): StatementSync => storage.database.prepare(sql);
  const sessionColumns = "client_id, sequence, last_index, result";
  return {
    selectValue: prepare("SELECT value FROM sm_kv WHERE key = ?"),
    upsertValue: prepare(
      "INSERT INTO sm_kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    deleteValue: prepare("DELETE FROM sm_kv WHERE key = ?"),
    // Two statements, because `key < NULL` would defeat the index range.
    listFrom: prepare("SELECT key, value FROM sm_kv WHERE key >= ? ORDER BY key LIMIT ?"),
    listRange: prepare(
      "SELECT key, value FROM sm_kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
    ),
    selectMembers: prepare("SELECT info FROM sm_member ORDER BY node_id"),
    upsertMember: prepare(
      "INSERT INTO sm_member (node_id, info) VALUES (?, ?) ON CONFLICT (node_id) DO UPDATE SET info = excluded.info",
    ),
    deleteMember: prepare("DELETE FROM sm_member WHERE node_id = ?"),
    selectRevoked: prepare(
      "SELECT p2p_node_id, revoked_index FROM sm_revoked ORDER BY revoked_index, p2p_node_id",
    ),
    selectRevokedKey: prepare("SELECT 1 FROM sm_revoked WHERE p2p_node_id = ?"),
    upsertRevoked: prepare(
      "INSERT OR REPLACE INTO sm_revoked (p2p_node_id, revoked_index) VALUES (?, ?)",
    ),
    deleteRevoked: prepare("DELETE FROM sm_revoked WHERE p2p_node_id = ?"),
    selectInvites: prepare("SELECT record FROM sm_invite ORDER BY token_hash"),
    selectInvite: prepare("SELECT record FROM sm_invite WHERE token_hash = ?"),
    upsertInvite: prepare("INSERT OR REPLACE INTO sm_invite (token_hash, record) VALUES (?, ?)"),
    deleteInvite: prepare("DELETE FROM sm_invite WHERE token_hash = ?"),
    selectInvitedLearners: prepare("SELECT node_id FROM sm_invited_learner ORDER BY node_id"),
    insertInvitedLearner: prepare("INSERT OR IGNORE INTO sm_invited_learner (node_id) VALUES (?)"),
    deleteInvitedLearner: prepare("DELETE FROM sm_invited_learner WHERE node_id = ?"),
    selectApplied: prepare("SELECT applied_index FROM sm_state WHERE id = 1"),
    updateApplied: prepare("UPDATE sm_state SET applied_index = ? WHERE id = 1"),
    selectConfState: prepare("SELECT conf_state FROM sm_state WHERE id = 1"),
    updateConfState: prepare("UPDATE sm_state SET conf_state = ? WHERE id = 1"),
    selectClusterId: prepare("SELECT cluster_id FROM sm_state WHERE id = 1"),
    updateClusterId: prepare("UPDATE sm_state SET cluster_id = ? WHERE id = 1"),
    selectSession: prepare(`SELECT ${sessionColumns} FROM sm_session WHERE client_id = ?`),
    selectSessions: prepare(`SELECT ${sessionColumns} FROM sm_session ORDER BY last_index`),
    selectOldestSession: prepare(
      `SELECT ${sessionColumns} FROM sm_session ORDER BY last_index LIMIT 1`,
    ),
    countSessions: prepare("SELECT count(*) AS count FROM sm_session"),
    upsertSession: prepare(
      `INSERT OR REPLACE INTO sm_session (${sessionColumns}) VALUES (?, ?, ?, ?)`,
    ),
    deleteSession: prepare("DELETE FROM sm_session WHERE client_id = ?"),
  };
}
