/**
 * The staging area of a snapshot being received: one `staging_<table>` for each replicated
 * state table (`sm_*`), created with the same definition (so keys, uniqueness and columns
 * are checked as each chunk lands), in the node's own database.
 *
 * Chunks land one small transaction at a time, without waiting for the disk, each with its
 * SHA-256 in `staging_chunk` and the image's id in `staging_image`: a transfer broken by a
 * crash or a cut resumes after the last chunk staged, when the leader offers the same image
 * again (`stagedImage`). A half-received image is never installed: only one whose digest
 * matched. The switch-over (`installStaged`) runs inside the
 * Ready's transaction, together with the Raft snapshot record: the state tables are
 * dropped and the staging tables renamed in their place, all in one commit, or nothing is.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import {
  BackupImageError,
  chunkDigestOf,
  decodeImageChunk,
  imageDigestOf,
  importImageChunk,
  stateTables,
} from "../backup/backup_image.ts";
import type { ConfState } from "../raft/types.ts";
import { parseConfState, type SqliteStorage } from "../storage/sqlite_storage.ts";
import { assert } from "../util/assert.ts";

/** The name prefix of a staging table: `staging_sm_kv` stages `sm_kv`. */
export const STAGING_PREFIX = "staging_";

/** The image being staged: its id (one row). */
const IMAGE_TABLE = `${STAGING_PREFIX}image`;
/** The SHA-256 of each chunk staged, by its number in the stream (from 1). */
const CHUNK_TABLE = `${STAGING_PREFIX}chunk`;

/** The staging tables in `database`: the staged state tables and the two above. */
function stagingTables(database: DatabaseSync): string[] {
  const rows = database.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'staging\\_%' ESCAPE '\\'",
  ).all() as { name: string }[];
  return rows.map((row) => row.name);
}

/** The image a previous transfer staged part of, or `null` (nothing, or not resumable). */
export function stagedImage(storage: SqliteStorage): { imageId: string; chunks: number } | null {
  const tables = new Set(stagingTables(storage.database));
  if (!tables.has(IMAGE_TABLE) || !tables.has(CHUNK_TABLE)) return null;
  const row = storage.database.prepare(
    `SELECT image_id, (SELECT count(*) FROM "${CHUNK_TABLE}") AS chunks FROM "${IMAGE_TABLE}"`,
  ).get() as { image_id: string; chunks: number } | undefined;
  return row === undefined ? null : { imageId: row.image_id, chunks: row.chunks };
}

/** Drops every staging table (a staged or half-staged image is given up). */
export function discardStaging(storage: SqliteStorage): void {
  const tables = stagingTables(storage.database);
  if (tables.length === 0) return;
  storage.transaction(() => {
    for (const table of tables) storage.database.exec(`DROP TABLE "${table}"`);
  }, { durable: false });
}

/**
 * Empty staging tables for image `imageId`, one per state table, with the state tables'
 * definitions; whatever was staged before is dropped.
 */
export function createStaging(storage: SqliteStorage, imageId: string): void {
  const { database } = storage;
  storage.transaction(() => {
    for (const table of stagingTables(database)) database.exec(`DROP TABLE "${table}"`);
    database.exec(
      `CREATE TABLE "${IMAGE_TABLE}" (id INTEGER PRIMARY KEY CHECK (id = 1), image_id TEXT NOT NULL);
       CREATE TABLE "${CHUNK_TABLE}" (sequence INTEGER PRIMARY KEY, sha256 BLOB NOT NULL);`,
    );
    database.prepare(`INSERT INTO "${IMAGE_TABLE}" VALUES (1, ?)`).run(imageId);
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

/**
 * Writes chunk `sequence` (the next after those staged) into the staging tables, with its
 * digest, in one transaction; throws `BackupImageError` when it is not an image chunk.
 */
export function stageChunk(storage: SqliteStorage, sequence: number, bytes: Uint8Array): number {
  const chunk = decodeImageChunk(bytes);
  const { database } = storage;
  return storage.transaction(() => {
    const rows = importImageChunk(database, {
      ...chunk,
      table: `${STAGING_PREFIX}${chunk.table}`,
    });
    // A chunk number that is taken fails the primary key: a chunk lands once.
    database.prepare(`INSERT INTO "${CHUNK_TABLE}" VALUES (?, ?)`).run(
      sequence,
      chunkDigestOf(bytes),
    );
    return rows;
  }, { durable: false });
}

/** The digest of the chunks staged (`imageDigestOf`), to compare with the image's own. */
export function stagedDigest(storage: SqliteStorage): Uint8Array {
  const rows = storage.database.prepare(
    `SELECT sha256 FROM "${CHUNK_TABLE}" ORDER BY sequence`,
  ).all() as { sha256: Uint8Array }[];
  return imageDigestOf(rows.map((row) => row.sha256));
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
 * Replaces every state table with its staged image (the staging table takes its name) and
 * drops what else was staged. Call inside the transaction that records the snapshot (the
 * Ready's).
 */
export function installStaged(storage: SqliteStorage): void {
  assert(storage.inTransaction(), "the switch-over is part of the Ready's transaction");
  const { database } = storage;
  const staged = new Set(stagingTables(database));
  for (const table of stateTables(database)) {
    const staging = `${STAGING_PREFIX}${table}`;
    assert(staged.has(staging), "every state table has a staged image", { detail: () => table });
    // The staging table becomes the state table: a rename rewrites only the schema, where
    // copying the rows took as long as staging them (about a second for 45 MB), all of
    // it inside the Ready. Indexes and triggers of the old table are made again.
    const extras = database.prepare(
      "SELECT sql FROM sqlite_schema WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
    ).all(table) as { sql: string }[];
    database.exec(`DROP TABLE "${table}"; ALTER TABLE "${staging}" RENAME TO "${table}"`);
    for (const { sql } of extras) database.exec(sql);
    staged.delete(staging);
  }
  for (const staging of staged) database.exec(`DROP TABLE "${staging}"`);
}
