/**
 * The staging area of a snapshot being received: one `staging_<table>` for each replicated
 * state table (`sm_*`), created with the same definition (so keys, uniqueness and columns
 * are checked as each chunk lands), in the node's own database.
 *
 * Chunks land one small transaction at a time, without waiting for the disk: a staged image
 * is worth nothing after a crash, and the node drops the staging tables when it starts, so
 * a half-received image is never used. The switch-over (`installStaged`) runs inside the
 * Ready's transaction, together with the Raft snapshot record: the state tables are
 * replaced from the staging tables and these dropped, all in one commit, or nothing is.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import {
  BackupImageError,
  decodeImageChunk,
  importImageChunk,
  stateTables,
} from "../backup/backup_image.ts";
import type { ConfState } from "../raft/types.ts";
import { parseConfState, type SqliteStorage } from "../storage/sqlite_storage.ts";
import { assert } from "../util/assert.ts";

/** The name prefix of a staging table: `staging_sm_kv` stages `sm_kv`. */
export const STAGING_PREFIX = "staging_";

/** The staging tables in `database`. */
function stagingTables(database: DatabaseSync): string[] {
  const rows = database.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'staging\\_sm\\_%' ESCAPE '\\'",
  ).all() as { name: string }[];
  return rows.map((row) => row.name);
}

/** Drops every staging table (a staged or half-staged image is given up). */
export function discardStaging(storage: SqliteStorage): void {
  const tables = stagingTables(storage.database);
  if (tables.length === 0) return;
  storage.transaction(() => {
    for (const table of tables) storage.database.exec(`DROP TABLE "${table}"`);
  }, { durable: false });
}

/** Empty staging tables, one per state table, with the state tables' definitions. */
export function createStaging(storage: SqliteStorage): void {
  const { database } = storage;
  storage.transaction(() => {
    for (const table of stagingTables(database)) database.exec(`DROP TABLE "${table}"`);
    for (const table of stateTables(database)) {
      const row = database.prepare(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
      )
        .get(table) as { sql: string };
      // SQLite keeps the CREATE TABLE text normalised: "CREATE TABLE <name> (…".
      const definition = row.sql.replace(/^CREATE TABLE\s+("?)[a-z0-9_]+\1/, "");
      assert(definition !== row.sql, "a state table's definition starts with its name");
      database.exec(`CREATE TABLE "${STAGING_PREFIX}${table}" ${definition}`);
    }
  }, { durable: false });
}

/** Writes one image chunk into the staging tables; throws `BackupImageError` when it is not one. */
export function stageChunk(storage: SqliteStorage, bytes: Uint8Array): number {
  const chunk = decodeImageChunk(bytes);
  return storage.transaction(
    () =>
      importImageChunk(storage.database, { ...chunk, table: `${STAGING_PREFIX}${chunk.table}` }),
    { durable: false },
  );
}

/** Where the staged image stands; throws `BackupImageError` when it has no state row. */
export function stagedPosition(storage: SqliteStorage): { index: number; confState: ConfState } {
  const row = storage.database.prepare(
    `SELECT applied_index, conf_state FROM "${STAGING_PREFIX}sm_state" WHERE id = 1`,
  ).get() as { applied_index: number; conf_state: string } | undefined;
  const confState = row === undefined ? null : parseConfState(row.conf_state);
  if (row === undefined || confState === null) {
    throw new BackupImageError("the image has no valid sm_state row");
  }
  return { index: row.applied_index, confState };
}

/**
 * Replaces every state table with its staged image and drops the staging tables. Call
 * inside the transaction that records the snapshot (the Ready's).
 */
export function installStaged(storage: SqliteStorage): void {
  assert(storage.inTransaction(), "the switch-over is part of the Ready's transaction");
  const { database } = storage;
  const staged = new Set(stagingTables(database));
  for (const table of stateTables(database)) {
    const staging = `${STAGING_PREFIX}${table}`;
    assert(staged.has(staging), "every state table has a staged image", { detail: () => table });
    database.exec(`DELETE FROM "${table}"; INSERT INTO "${table}" SELECT * FROM "${staging}"`);
  }
  for (const staging of staged) database.exec(`DROP TABLE "${staging}"`);
}
