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

import { createSha256, sha256 } from "../util/sha256.ts";
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
 * Where a chunk of an image starts: the table (its place among `stateTables`) and the key of
 * the last row before it in that table (`null`: the table's first row). Chunks are cut the
 * same way every time from the same read, so a cursor taken from one pass starts the same
 * chunk in another (a transfer resumes from it).
 */
export interface ImageCursor {
  table: number;
  after: SQLInputValue[] | null;
}

/** The start of an image. */
export const IMAGE_START: ImageCursor = { table: 0, after: null };

/** A chunk, and where the chunk after it starts. */
export interface CursorChunk {
  chunk: Uint8Array;
  next: ImageCursor;
}

/** Rows read per query at most: bounds memory when row sizes change (values ≤ 256 KiB). */
const PAGE_ROWS_MAX = 128;

/**
 * The chunks of the image that `reader` sees, each about `chunkBytes` of row data (a
 * single larger row makes a larger chunk). Pulled one at a time, so the caller decides
 * the pace and holds one chunk in memory.
 */
export function* imageChunks(
  reader: DatabaseSync,
  options: { chunkBytes: number },
): Generator<Uint8Array> {
  for (const { chunk } of imageChunksFrom(reader, { ...options, from: IMAGE_START })) yield chunk;
}

/**
 * The chunks of the image from `from` on, each with the cursor of the next. Rows are read
 * in pages in key order (`WHERE key > last ORDER BY key LIMIT n`), which costs about half
 * of stepping one statement row by row in `node:sqlite`, and which any page can restart.
 */
export function* imageChunksFrom(
  reader: DatabaseSync,
  options: { chunkBytes: number; from: ImageCursor },
): Generator<CursorChunk> {
  const tables = stateTables(reader);
  for (let tableIndex = options.from.table; tableIndex < tables.length; tableIndex++) {
    const table = tables[tableIndex]!;
    const pages = new TablePages(reader, table);
    let after = tableIndex === options.from.table ? options.from.after : null;
    let rows: unknown[][] = [];
    let bytes = 0;
    let pageRows = 1;
    for (;;) {
      const page = pages.read(after, pageRows);
      if (page.length === 0) break;
      let pageBytes = 0;
      for (let i = 0; i < page.length; i++) {
        const row = page[i]!;
        const size = rowBytes(row);
        rows.push(row);
        bytes += size;
        pageBytes += size;
        if (bytes >= options.chunkBytes) {
          yield {
            chunk: encodeMessagePack([table, pages.columns, rows]),
            next: { table: tableIndex, after: pages.keyAt(i) },
          };
          rows = [];
          bytes = 0;
        }
      }
      after = pages.keyAt(page.length - 1);
      // The next page about fills the chunk, from the size of this page's rows.
      const averageBytes = Math.max(1, pageBytes / page.length);
      const wanted = Math.ceil((options.chunkBytes - bytes) / averageBytes);
      pageRows = Math.max(1, Math.min(PAGE_ROWS_MAX, wanted));
    }
    if (rows.length > 0) {
      yield {
        chunk: encodeMessagePack([table, pages.columns, rows]),
        next: { table: tableIndex + 1, after: null },
      };
    }
  }
}

/** Pages of one table's rows in key order: its primary key, or its rowid. */
class TablePages {
  readonly columns: string[];
  readonly #keyPositions: number[];
  readonly #first: StatementSync;
  readonly #next: StatementSync;
  /** Rowid tables select the rowid first, as the key, and drop it from each row. */
  readonly #rowid: boolean;

  constructor(reader: DatabaseSync, table: string) {
    const info = reader.prepare(`PRAGMA table_info("${table}")`).all() as {
      name: string;
      pk: number;
    }[];
    this.columns = info.map((column) => column.name);
    const list = reader.prepare(`PRAGMA table_list("${table}")`).get() as { wr: number };
    // A rowid table's declared key may hold NULLs (which no `>` passes); its rowid cannot.
    this.#rowid = list.wr === 0;
    const names = this.columns.map((column) => `"${column}"`).join(", ");
    let keys: string[];
    if (this.#rowid) {
      keys = ["rowid"];
      this.#keyPositions = [0];
    } else {
      const primary = info.filter((column) => column.pk > 0).sort((a, b) => a.pk - b.pk);
      keys = primary.map((column) => `"${column.name}"`);
      this.#keyPositions = primary.map((column) => this.columns.indexOf(column.name));
    }
    const select = `SELECT ${this.#rowid ? "rowid, " : ""}${names} FROM "${table}"`;
    const order = `ORDER BY ${keys.join(", ")} LIMIT ?`;
    this.#first = reader.prepare(`${select} ${order}`);
    this.#next = reader.prepare(
      `${select} WHERE (${keys.join(", ")}) > (${keys.map(() => "?").join(", ")}) ${order}`,
    );
    this.#first.setReturnArrays(true);
    this.#next.setReturnArrays(true);
  }

  /** Up to `limit` rows after the key `after` (`null`: from the first). */
  read(after: SQLInputValue[] | null, limit: number): unknown[][] {
    const rows =
      (after === null
        ? this.#first.all(limit)
        : this.#next.all(...after, limit)) as unknown as unknown[][];
    if (this.#rowid) this.#rowids = rows.map((row) => row.shift() as number);
    this.#page = rows;
    return rows;
  }

  /** The rowids of the last page (rowid tables). */
  #rowids: number[] = [];
  #page: unknown[][] = [];

  /** The key of row `i` of the last page read. */
  keyAt(i: number): SQLInputValue[] {
    if (this.#rowid) return [this.#rowids[i]!];
    const row = this.#page[i]!;
    return this.#keyPositions.map((position) => row[position] as SQLInputValue);
  }
}

function rowBytes(row: unknown[]): number {
  let bytes = 0;
  for (const value of row) bytes += valueBytes(value);
  return bytes;
}

function valueBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.length + 5;
  if (typeof value === "string") return value.length * 3 + 5;
  return 9;
}

/** The SHA-256 of one chunk. */
export function chunkDigestOf(chunk: Uint8Array): Uint8Array {
  return sha256(chunk);
}

/**
 * The digest of a whole image: the SHA-256 of its chunks' SHA-256s in order. A digest of
 * digests, so that a receiver that resumes needs the digests of the chunks it kept, not
 * their bytes.
 */
export function imageDigestOf(digests: Iterable<Uint8Array>): Uint8Array {
  const hash = createSha256();
  for (const digest of digests) hash.update(digest);
  return new Uint8Array(hash.digest());
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
  const slots = `(${chunk.columns.map(() => "?").join(", ")})`;
  const insertOf = (rows: number) =>
    database.prepare(
      `INSERT INTO "${chunk.table}" (${names}) VALUES ${Array(rows).fill(slots).join(", ")}`,
    );
  // Several rows per statement: each `run` crosses into SQLite once (about a third less
  // CPU than a row per run). SQLite copies what it binds, so the Buffers msgpack decoded
  // (views of the chunk) do.
  const { rows } = chunk;
  const batch = insertOf(INSERT_BATCH_ROWS);
  let next = 0;
  for (; next + INSERT_BATCH_ROWS <= rows.length; next += INSERT_BATCH_ROWS) {
    batch.run(...rows.slice(next, next + INSERT_BATCH_ROWS).flat());
  }
  if (next < rows.length) insertOf(rows.length - next).run(...rows.slice(next).flat());
  return rows.length;
}

/** Rows per `INSERT` statement of `importImageChunk` (well below SQLite's bound variables). */
const INSERT_BATCH_ROWS = 32;

/** Empties every replicated state table of `database`. Call inside a transaction. */
export function clearStateTables(database: DatabaseSync): void {
  for (const table of stateTables(database)) database.exec(`DELETE FROM "${table}"`);
}
