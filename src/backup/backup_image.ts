/**
 * The image inside a backup: every row of every replicated state table, read from one
 * consistent SQLite snapshot and cut into bounded chunks.
 *
 * The image is generic over the state store's tables: every table whose name starts with
 * `sm_` (the `SqliteStateStore` convention) is exported, whatever it holds, so a table
 * that a later change adds to the replicated state is backed up and restored without a
 * change here. The Raft tables (`meta`, `hard_state`, `raft_log`, `raft_snapshot`) are
 * not: a restore founds a new cluster with a log of its own.
 *
 * A chunk is one MessagePack value `[table, columns, rows]`, rows of one table only.
 *
 * @module
 */

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { decodeMessagePack, encodeMessagePack } from "../state_machine/msgpack_codec.ts";
import type { ConfState } from "../raft/types.ts";
import { parseConfState } from "../storage/sqlite_storage.ts";

/** The name prefix of the replicated state tables. */
export const STATE_TABLE_PREFIX = "sm_";
/** Default bytes of row data per chunk. */
export const IMAGE_CHUNK_BYTES_DEFAULT = 256 * 1024;

const TABLE_NAME = /^sm_[a-z0-9_]{1,60}$/;
const COLUMN_NAME = /^[a-z_][a-z0-9_]{0,60}$/;

/** Raised when a chunk is not part of an image this build can load. */
export class BackupImageError extends Error {
  override name = "BackupImageError";
}

/**
 * Where the image stands in the log: its applied index, that entry's term, the cluster id,
 * and the configuration after that entry.
 */
export interface ImagePosition {
  index: number;
  term: number;
  clusterId: string | null;
  confState: ConfState;
}

/** The applied position of the database `reader` sees (the snapshot it reads). */
export function imagePosition(reader: DatabaseSync): ImagePosition {
  const state = reader.prepare(
    "SELECT applied_index, cluster_id, conf_state FROM sm_state WHERE id = 1",
  ).get() as { applied_index: number; cluster_id: string | null; conf_state: string };
  const index = state.applied_index;
  // The applied entry is in the log, or it is the snapshot's last entry.
  const row = (reader.prepare("SELECT term FROM raft_log WHERE log_index = ?").get(index) ??
    reader.prepare("SELECT term FROM raft_snapshot WHERE log_index = ?").get(index)) as
      | { term: number }
      | undefined;
  const confState = parseConfState(state.conf_state) ?? { voters: [], learners: [] };
  return { index, term: row?.term ?? 0, clusterId: state.cluster_id, confState };
}

/** The replicated state tables of `database`, by name. */
export function stateTables(database: DatabaseSync): string[] {
  const rows = database.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'sm\\_%' ESCAPE '\\' ORDER BY name",
  ).all() as { name: string }[];
  return rows.map((row) => row.name);
}

/** The column names of `table`, in declaration order. */
function columnsOf(database: DatabaseSync, table: string): string[] {
  const rows = database.prepare(`PRAGMA table_info("${table}")`).all() as { name: string }[];
  return rows.map((row) => row.name);
}

/**
 * The chunks of the image that `reader` sees, each about `chunkBytes` of row data (a
 * single larger row makes a larger chunk). Pulled one at a time, so the caller decides
 * the pace and holds one chunk in memory.
 */
export function* imageChunks(
  reader: DatabaseSync,
  options: { chunkBytes: number },
): Generator<Uint8Array> {
  for (const table of stateTables(reader)) {
    const columns = columnsOf(reader, table);
    const statement: StatementSync = reader.prepare(`SELECT * FROM "${table}"`);
    statement.setReturnArrays(true);
    let rows: unknown[][] = [];
    let bytes = 0;
    for (const row of statement.iterate() as Iterable<unknown[]>) {
      rows.push(row);
      bytes += row.reduce((sum: number, value) => sum + valueBytes(value), 0);
      if (bytes >= options.chunkBytes) {
        yield encodeMessagePack([table, columns, rows]);
        rows = [];
        bytes = 0;
      }
    }
    if (rows.length > 0) yield encodeMessagePack([table, columns, rows]);
  }
}

function valueBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.length + 5;
  if (typeof value === "string") return value.length * 3 + 5;
  return 9;
}

/** A decoded chunk. */
export interface ImageChunk {
  table: string;
  columns: string[];
  rows: SQLInputValue[][];
}

/** Decodes and checks one chunk; throws `BackupImageError` naming the problem. */
export function decodeImageChunk(bytes: Uint8Array): ImageChunk {
  let value: unknown;
  try {
    value = decodeMessagePack(bytes);
  } catch (error) {
    throw new BackupImageError(`a chunk is not MessagePack: ${(error as Error).message}`);
  }
  if (!Array.isArray(value) || value.length !== 3) {
    throw new BackupImageError("a chunk is not [table, columns, rows]");
  }
  const [table, columns, rows] = value as [unknown, unknown, unknown];
  if (typeof table !== "string" || !TABLE_NAME.test(table)) {
    throw new BackupImageError(`a chunk names the table ${JSON.stringify(table)}`);
  }
  const validColumns = Array.isArray(columns) && columns.length > 0 &&
    columns.every((column) => typeof column === "string" && COLUMN_NAME.test(column));
  if (!validColumns) throw new BackupImageError(`a chunk of ${table} has invalid column names`);
  if (!Array.isArray(rows)) throw new BackupImageError(`a chunk of ${table} has no rows`);
  for (const row of rows) {
    const valid = Array.isArray(row) && row.length === columns.length &&
      row.every((cell) =>
        cell === null || typeof cell === "number" || typeof cell === "string" ||
        cell instanceof Uint8Array
      );
    if (!valid) throw new BackupImageError(`a row of ${table} does not match its columns`);
  }
  return { table, columns: columns as string[], rows: rows as SQLInputValue[][] };
}

/**
 * Writes the rows of `chunk` into `database`, whose state tables must have been emptied
 * first. Refuses a table or a column this build does not have. Call inside a transaction.
 */
export function importImageChunk(database: DatabaseSync, chunk: ImageChunk): number {
  const known = columnsOf(database, chunk.table);
  if (known.length === 0) {
    throw new BackupImageError(
      `the backup holds table ${chunk.table}, which this build does not have`,
    );
  }
  const unknown = chunk.columns.find((column) => !known.includes(column));
  if (unknown !== undefined) {
    throw new BackupImageError(
      `the backup's table ${chunk.table} has column ${unknown}, which this build does not have`,
    );
  }
  const names = chunk.columns.map((column) => `"${column}"`).join(", ");
  const slots = chunk.columns.map(() => "?").join(", ");
  const insert = database.prepare(`INSERT INTO "${chunk.table}" (${names}) VALUES (${slots})`);
  // SQLite copies what it binds, so the Buffers msgpack decoded (views of the chunk) do.
  for (const row of chunk.rows) insert.run(...row);
  return chunk.rows.length;
}

/** Empties every replicated state table of `database`. Call inside a transaction. */
export function clearStateTables(database: DatabaseSync): void {
  for (const table of stateTables(database)) database.exec(`DELETE FROM "${table}"`);
}
