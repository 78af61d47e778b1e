/**
 * `SqliteStorage`: the node's durable Raft storage, one SQLite file `<data-dir>/blixard.db`
 * (DESIGN.md section 10).
 *
 * Durability: WAL journal with `synchronous=FULL`, so a commit returns only after the WAL is
 * fsynced; the pragma is read back at open and the node refuses to run otherwise. The
 * data dir's `LOCK` keeps a second process (a second node started on the same data dir by
 * mistake) out; SQLite itself runs in normal locking mode, so that a backup can read a
 * consistent snapshot on a second, read-only connection while this one keeps writing
 * (`openSnapshotReader`).
 *
 * Atomicity: `transaction(fn)` groups `persist` and the state machine's writes (the state
 * store shares this database) into one SQLite transaction, so a node pays one fsync per
 * Ready. Nested calls become savepoints and commit with the outermost one.
 *
 * Damage is found at open and reported as a one-line `StorageCorruptionError`; the storage
 * never resets itself.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { join } from "node:path";
import process from "node:process";
import { assert } from "../util/assert.ts";
import { confStateAfter, emptyConfState } from "../raft/membership.ts";
import {
  type ConfState,
  type Entry,
  entryBytes,
  type HardState,
  type MembershipChange,
  type Snapshot,
  type SnapshotMetadata,
} from "../raft/types.ts";
import { type DurableStorage, type PersistRequest, StorageCorruptionError } from "./storage.ts";

/** The layout of the Raft tables this build reads and writes. */
export const STORAGE_SCHEMA_VERSION = 1;

/** The file name inside the data dir. */
export const DATABASE_FILE_NAME = "blixard.db";

/** Options of `SqliteStorage.open`. */
export interface SqliteStorageOptions {
  /**
   * Run `PRAGMA quick_check` at open (default true). It reads every page once: about
   * 15 ms for a 100k-entry log on an SSD (see scripts/bench_storage.ts), so it is on.
   */
  quickCheck?: boolean;
}

/** A maximal run of consecutive log entries with the same term: `[firstIndex, next run)`. */
interface TermRun {
  readonly firstIndex: number;
  readonly term: number;
}

/**
 * What the storage keeps in memory to answer the hot-path queries without SQL. Replaced,
 * never mutated, so a transaction can restore it on rollback by keeping a reference.
 */
interface LogView {
  readonly hardState: HardState;
  readonly snapshot: SnapshotMetadata;
  /** The snapshot's index when the log is empty. */
  readonly lastIndex: number;
  /** Term runs of the entries after the snapshot, ascending; empty when the log is empty. */
  readonly termRuns: readonly TermRun[];
}

/** How a log row stores the entry type: 0 is a normal entry, the others a membership change. */
const KIND_BY_CHANGE = { addLearner: 1, promoteLearner: 2, removeNode: 3 } as const;

/** The first and last index of one term's entries. */
interface TermSpan {
  term: number;
  low: number;
  high: number;
}

/** A `raft_log` row as the statements return it: index, term, kind, node id, data. */
type LogRow = [number, number, number, number, Uint8Array];

/** Rows read per query by `entries()`: enough to amortize a query, few to waste past maxBytes. */
const ENTRY_PAGE_ROWS = 64;

const SCHEMA_SQL = `
  CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  CREATE TABLE hard_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL);
  CREATE TABLE raft_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    log_index INTEGER NOT NULL, term INTEGER NOT NULL, conf_state TEXT NOT NULL, data BLOB NOT NULL);
  CREATE TABLE raft_log (
    log_index INTEGER PRIMARY KEY, term INTEGER NOT NULL,
    kind INTEGER NOT NULL, node_id INTEGER NOT NULL, data BLOB NOT NULL);
  CREATE INDEX raft_log_membership ON raft_log (log_index) WHERE kind <> 0;
  CREATE INDEX raft_log_term ON raft_log (term);
  INSERT INTO meta (name, value) VALUES ('schema_version', ${STORAGE_SCHEMA_VERSION});
  INSERT INTO hard_state (id, term, vote, commit_index) VALUES (1, 0, 0, 0);
  INSERT INTO raft_snapshot (id, log_index, term, conf_state, data)
    VALUES (1, 0, 0, '{"voters":[],"learners":[]}', x'');
`;

/** Durable Raft storage on SQLite. Open it with `SqliteStorage.open(dataDir)`. */
export class SqliteStorage implements DurableStorage {
  /** The database file, for messages and for the state store that shares it. */
  readonly path: string;
  /**
   * The open database. The state store adds its own tables; every write must happen inside
   * `transaction` so that it commits together with the Raft state.
   */
  readonly database: DatabaseSync;
  readonly #dataDir: string;
  readonly #statements: ReturnType<typeof prepareStatements>;
  #view: LogView;
  /** Nesting depth of `transaction`; 0 outside. */
  #depth = 0;
  #closed = false;

  private constructor(dataDir: string, path: string, database: DatabaseSync) {
    this.#dataDir = dataDir;
    this.path = path;
    this.database = database;
    this.#statements = prepareStatements(database);
    this.#view = this.#loadView();
  }

  /**
   * Bytes free to this process in the data dir's file system (`statfs`), or `null` when
   * the system cannot say. One system call: for `/status` while the disk is full.
   */
  freeBytes(): number | null {
    try {
      // `node:fs` costs a start about 25 ms of CPU to load, and only a full disk needs it.
      const stats = process.getBuiltinModule("node:fs").statfsSync(this.#dataDir);
      return stats.bavail * stats.bsize;
    } catch {
      return null;
    }
  }

  /**
   * Opens (creating on first use) `<dataDir>/blixard.db`. Throws `StorageCorruptionError`
   * when the file is damaged or breaks an invariant, and a plain `Error` when the file is
   * in use by another process or cannot be opened.
   */
  static open(dataDir: string, options: SqliteStorageOptions = {}): SqliteStorage {
    Deno.mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, DATABASE_FILE_NAME);
    let database: DatabaseSync | null = null;
    try {
      database = new DatabaseSync(path);
      configureDurability(database, path);
      if (options.quickCheck ?? true) runQuickCheck(database);
      createOrCheckSchema(database);
      return new SqliteStorage(dataDir, path, database);
    } catch (error) {
      database?.close();
      throw describeOpenError(error, { path, dataDir });
    }
  }

  /** A `StorageCorruptionError` naming this file, `what` is wrong, and the operator's way out. */
  corruption(what: string): StorageCorruptionError {
    return corruptionError(what, { path: this.path, dataDir: this.#dataDir });
  }

  /** The hard state, and the snapshot's configuration plus every membership entry after it. */
  initialState(): { hardState: HardState; confState: ConfState } {
    const rows = this.#statements.selectMembership.all() as unknown as LogRow[];
    const confState = confStateAfter(this.#view.snapshot.confState, rows.map(rowToEntry));
    return { hardState: { ...this.#view.hardState }, confState };
  }

  /**
   * The configuration in force after entry `index` (from the snapshot's and the membership
   * entries up to `index`): what a snapshot at `index` records. `index` must be in the log.
   */
  confStateAt(index: number): ConfState {
    assert(
      index >= this.#view.snapshot.index && index <= this.#view.lastIndex,
      "the index is in the log",
      { detail: () => `index ${index}, log ${this.#view.snapshot.index}..${this.#view.lastIndex}` },
    );
    const rows = this.#statements.selectMembership.all() as unknown as LogRow[];
    const entries = rows.map(rowToEntry).filter((entry) => entry.index <= index);
    return confStateAfter(this.#view.snapshot.confState, entries);
  }

  /** Entries in `[low, high)`: the first always, then as many as fit in `maxBytes`. */
  entries(low: number, high: number, maxBytes: number): Entry[] {
    assert(
      this.firstIndex() <= low && low < high && high <= this.lastIndex() + 1,
      "firstIndex <= low < high <= lastIndex + 1",
      { detail: () => `low ${low}, high ${high}, log [${this.firstIndex()}, ${this.lastIndex()}]` },
    );
    const entries: Entry[] = [];
    let totalBytes = 0;
    let full = false;
    // Pages of rows as arrays: three times faster than iterate() with row objects.
    for (let from = low; !full && from < high; from = entries.at(-1)!.index + 1) {
      const rows = this.#statements.selectEntryPage.all(
        from,
        high,
        ENTRY_PAGE_ROWS,
      ) as unknown as LogRow[];
      assert(rows[0]?.[0] === from, "stored log is contiguous", {
        detail: () => `no entry at ${from}`,
      });
      for (const row of rows) {
        const entry = rowToEntry(row);
        totalBytes += entryBytes(entry);
        full = entries.length > 0 && totalBytes > maxBytes;
        if (full) break;
        entries.push(entry);
      }
    }
    return entries;
  }

  /** The term at `index` from memory; the snapshot's at `firstIndex() - 1`; `null` outside. */
  term(index: number): number | null {
    const view = this.#view;
    if (index === view.snapshot.index) return view.snapshot.term;
    if (index < view.snapshot.index || index > view.lastIndex) return null;
    return termAt(view.termRuns, index);
  }

  /** The snapshot's index + 1. */
  firstIndex(): number {
    return this.#view.snapshot.index + 1;
  }

  /** The last entry's index, or the snapshot's when the log is empty. */
  lastIndex(): number {
    return this.#view.lastIndex;
  }

  /** The latest snapshot, data read from disk. */
  snapshot(): Snapshot {
    const row = this.#statements.selectSnapshotData.get() as { data: Uint8Array };
    return { metadata: copyMetadata(this.#view.snapshot), data: row.data };
  }

  /**
   * Snapshot, entries, hard state in one transaction; synced on return, or with the
   * enclosing `transaction` when called inside one. Asserts the log invariants afterwards.
   */
  persist(request: PersistRequest): void {
    this.transaction(() => {
      if (request.snapshot !== null) this.#installSnapshot(request.snapshot);
      if (request.entries.length > 0) this.#append(request.entries);
      if (request.hardState !== null) this.#writeHardState(request.hardState);
      const violation = logViolation(this.#view);
      assert(violation === null, "persisted log invariants hold", { detail: () => `${violation}` });
    });
  }

  /** Records `snapshot` and drops the entries it covers, atomically; an older one is a no-op. */
  compact(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    const view = this.#view;
    // A snapshot installed meanwhile may already cover `index`: nothing is left to compact.
    if (index <= view.snapshot.index) return;
    assert(
      index <= view.hardState.commit,
      "only committed entries are compacted",
      { detail: () => `snapshot index ${index}, commit ${view.hardState.commit}` },
    );
    assert(
      this.term(index) === term,
      "snapshot matches the log",
      { detail: () => `snapshot (index ${index}, term ${term}), log term ${this.term(index)}` },
    );
    this.transaction(() => {
      this.#writeSnapshot(snapshot);
      this.#statements.deleteThrough.run(index);
      this.#view = {
        ...this.#view,
        snapshot: copyMetadata(snapshot.metadata),
        termRuns: dropRunsThrough(this.#view.termRuns, index, this.#view.lastIndex),
      };
    });
  }

  /**
   * Runs `fn` inside one SQLite transaction, committed (and so fsynced) when the outermost
   * call returns, rolled back when `fn` throws. A nested call is a savepoint: its failure
   * undoes only its own writes, its success commits with the outermost transaction. `fn`
   * must be synchronous: an `await` inside would let other code run mid-transaction.
   *
   * `durable: false` (outermost call only) commits without waiting for the disk: the
   * transaction stays atomic and survives a process crash, and a power loss can only take
   * it back whole, together with the non-durable ones after it. For writes that can be
   * rebuilt from durable state (the commit index, applying committed entries), the way
   * etcd skips the sync when only the commit index changed. The next durable commit syncs
   * everything before it.
   */
  transaction<T>(fn: () => T, options: { durable?: boolean } = {}): T {
    assert(!this.#closed, "storage is open", { detail: () => this.path });
    const outermost = this.#depth === 0;
    const durable = options.durable ?? true;
    assert(outermost || durable, "only the outermost transaction chooses its durability");
    // exec, not a statement prepared at open: one prepared before the journal mode was set
    // runs without effect.
    if (!durable) this.database.exec("PRAGMA synchronous = OFF");
    try {
      return this.#transaction(fn, outermost);
    } finally {
      if (!durable) this.database.exec("PRAGMA synchronous = FULL");
    }
  }

  #transaction<T>(fn: () => T, outermost: boolean): T {
    const statements = this.#statements;
    (outermost ? statements.begin : statements.savepoint).run();
    const savedView = this.#view;
    this.#depth += 1;
    try {
      const result = fn();
      assert(!(result instanceof Promise), "transaction() takes a synchronous function");
      (outermost ? statements.commit : statements.release).run();
      return result;
    } catch (error) {
      this.#view = savedView;
      if (!this.database.isTransaction) {
        // SQLite rolled the whole transaction back itself (it may on a full disk or an I/O
        // error): no savepoint is left to return to, and the error goes up to the outermost
        // call, which finds nothing to roll back either.
      } else if (!outermost) {
        statements.rollbackToSavepoint.run();
        statements.release.run();
      } else {
        // A failed COMMIT (disk full, I/O error) can leave the transaction open.
        statements.rollback.run();
      }
      throw error;
    } finally {
      this.#depth -= 1;
    }
  }

  /**
   * A second, read-only connection to this database inside one read transaction: a
   * consistent snapshot of everything committed before the call, which stays the same
   * while this storage keeps writing (WAL). A backup reads through it page by page.
   * Close it soon: while it is open, checkpoints cannot move past its snapshot.
   */
  openSnapshotReader(): DatabaseSync {
    assert(!this.#closed, "storage is open", { detail: () => this.path });
    const reader = new DatabaseSync(this.path, { readOnly: true });
    try {
      reader.exec("BEGIN");
      // The read transaction (and so the snapshot) starts with the first read, not at BEGIN.
      reader.prepare("SELECT count(*) FROM meta").get();
      return reader;
    } catch (error) {
      reader.close();
      throw error;
    }
  }

  /** True while inside `transaction`. */
  inTransaction(): boolean {
    return this.#depth > 0;
  }

  /** Closes the database. The storage cannot be used afterwards. */
  close(): void {
    assert(this.#depth === 0, "close() is not called inside a transaction");
    if (this.#closed) return;
    this.#closed = true;
    this.database.close();
  }

  #loadView(): LogView {
    const hard = this.#statements.selectHardState.get() as Record<string, number> | undefined;
    const snap = this.#statements.selectSnapshotMetadata.get() as
      | Record<string, unknown>
      | undefined;
    if (hard === undefined) throw this.corruption("the hard_state row is missing");
    if (snap === undefined) throw this.corruption("the raft_snapshot row is missing");
    const confState = parseConfState(snap.conf_state);
    if (confState === null) {
      throw this.corruption(
        `snapshot conf_state ${String(snap.conf_state)} is not a configuration`,
      );
    }
    const snapshot = { index: Number(snap.log_index), term: Number(snap.term), confState };
    const hardState = {
      term: hard.term ?? 0,
      vote: hard.vote ?? 0,
      commit: hard.commit_index ?? 0,
    };
    const span = this.#statements.selectLogSpan.get() as {
      count: number;
      low: number | null;
      high: number | null;
    };
    const lastIndex = span.high ?? snapshot.index;
    if (
      span.count > 0 &&
      (span.low !== snapshot.index + 1 || lastIndex - snapshot.index !== span.count)
    ) {
      throw this.corruption(
        `log entries are not contiguous from snapshot index ${snapshot.index} + 1 ` +
          `(${span.count} entries between ${span.low} and ${span.high})`,
      );
    }
    const termRuns = this.#loadTermRuns();
    const view = { hardState, snapshot, lastIndex, termRuns };
    const violation = logViolation(view);
    if (violation !== null) throw this.corruption(violation);
    this.#checkMembershipEntries(snapshot.confState);
    return view;
  }

  /**
   * The term runs of the log, from each term's first and last index (index seeks on
   * `raft_log_term`, not a scan). Terms never decrease exactly when every term's entries
   * all come before the next term's.
   */
  #loadTermRuns(): TermRun[] {
    const spans = this.#statements.selectTermSpans.all() as unknown as TermSpan[];
    for (let i = 1; i < spans.length; i += 1) {
      const [before, after] = [spans[i - 1]!, spans[i]!];
      if (before.high > after.low) {
        throw this.corruption(
          `log terms decrease: an entry of term ${before.term} at index ${before.high} ` +
            `follows term ${after.term} from index ${after.low}`,
        );
      }
    }
    return spans.map((span) => ({ firstIndex: span.low, term: span.term }));
  }

  #checkMembershipEntries(snapshotConf: ConfState): void {
    const rows = this.#statements.selectMembership.all() as unknown as LogRow[];
    try {
      confStateAfter(snapshotConf, rows.map(rowToEntry));
    } catch (error) {
      throw this.corruption(`bad membership entry: ${(error as Error).message}`);
    }
  }

  #installSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    // An older or equal snapshot is stale (it arrived after a newer one): keep ours.
    if (index <= this.#view.snapshot.index) return;
    const matches = this.term(index) === term;
    // As etcd does: entries after the snapshot survive only if the log agrees with it at
    // its index (Raft §7: "if the follower has an existing entry with the same index and
    // term as the snapshot's last included entry, it retains log entries following it").
    if (matches) this.#statements.deleteThrough.run(index);
    else this.#statements.deleteAll.run();
    this.#writeSnapshot(snapshot);
    this.#view = {
      ...this.#view,
      snapshot: copyMetadata(snapshot.metadata),
      lastIndex: matches ? this.#view.lastIndex : index,
      termRuns: matches ? dropRunsThrough(this.#view.termRuns, index, this.#view.lastIndex) : [],
    };
  }

  #append(entries: readonly Entry[]): void {
    const firstIndex = this.firstIndex();
    // Entries already covered by the snapshot are committed and identical: skip them.
    const fresh = entries.filter((entry) => entry.index >= firstIndex);
    const first = fresh[0];
    if (first === undefined) return;
    assert(
      first.index <= this.#view.lastIndex + 1,
      "appended entries leave no gap",
      { detail: () => `first new index ${first.index}, last index ${this.#view.lastIndex}` },
    );
    this.#statements.deleteFrom.run(first.index);
    let runs = truncateRuns(this.#view.termRuns, first.index);
    let previous = { index: first.index - 1, term: this.term(first.index - 1) ?? 0 };
    for (const entry of fresh) {
      assert(
        entry.index === previous.index + 1,
        "appended entries are contiguous",
        { detail: () => `index ${entry.index} after ${previous.index}` },
      );
      assert(
        entry.term >= previous.term,
        "log terms never decrease",
        { detail: () => `term ${entry.term} at ${entry.index} after term ${previous.term}` },
      );
      const row = entryToRow(entry);
      this.#statements.insertEntry.run(entry.index, entry.term, row.kind, row.nodeId, row.data);
      if (runs.at(-1)?.term !== entry.term) {
        runs = [...runs, { firstIndex: entry.index, term: entry.term }];
      }
      previous = entry;
    }
    this.#view = { ...this.#view, lastIndex: previous.index, termRuns: runs };
  }

  #writeHardState(hardState: HardState): void {
    const current = this.#view.hardState;
    assert(
      hardState.term >= current.term,
      "term never decreases",
      { detail: () => `term ${hardState.term} after ${current.term}` },
    );
    assert(
      hardState.commit >= current.commit,
      "commit index never decreases",
      { detail: () => `commit ${hardState.commit} after ${current.commit}` },
    );
    this.#statements.updateHardState.run(hardState.term, hardState.vote, hardState.commit);
    this.#view = { ...this.#view, hardState: { ...hardState } };
  }

  #writeSnapshot(snapshot: Snapshot): void {
    const { index, term, confState } = snapshot.metadata;
    this.#statements.updateSnapshot.run(index, term, encodeConfState(confState), snapshot.data);
  }
}

function prepareStatements(database: DatabaseSync) {
  const prepare = (sql: string): StatementSync => database.prepare(sql);
  const prepareArrays = (sql: string): StatementSync => {
    const statement = database.prepare(sql);
    statement.setReturnArrays(true);
    return statement;
  };
  const entryColumns = "log_index, term, kind, node_id, data";
  return {
    begin: prepare("BEGIN IMMEDIATE"),
    commit: prepare("COMMIT"),
    rollback: prepare("ROLLBACK"),
    savepoint: prepare("SAVEPOINT nested"),
    release: prepare("RELEASE nested"),
    rollbackToSavepoint: prepare("ROLLBACK TO nested"),
    selectHardState: prepare("SELECT term, vote, commit_index FROM hard_state WHERE id = 1"),
    selectSnapshotMetadata: prepare(
      "SELECT log_index, term, conf_state FROM raft_snapshot WHERE id = 1",
    ),
    selectSnapshotData: prepare("SELECT data FROM raft_snapshot WHERE id = 1"),
    selectLogSpan: prepare(
      "SELECT count(*) AS count, min(log_index) AS low, max(log_index) AS high FROM raft_log",
    ),
    // One row per distinct term, found by walking the term index: O(terms × log n).
    selectTermSpans: prepare(
      `WITH RECURSIVE terms (term) AS (
         SELECT min(term) FROM raft_log
         UNION ALL
         SELECT (SELECT min(term) FROM raft_log WHERE term > terms.term) FROM terms WHERE term IS NOT NULL)
       SELECT term,
         (SELECT min(log_index) FROM raft_log WHERE raft_log.term = terms.term) AS low,
         (SELECT max(log_index) FROM raft_log WHERE raft_log.term = terms.term) AS high
       FROM terms WHERE term IS NOT NULL ORDER BY term`,
    ),
    selectEntryPage: prepareArrays(
      `SELECT ${entryColumns} FROM raft_log WHERE log_index >= ? AND log_index < ?
       ORDER BY log_index LIMIT ?`,
    ),
    selectMembership: prepareArrays(
      `SELECT ${entryColumns} FROM raft_log WHERE kind <> 0 ORDER BY log_index`,
    ),
    insertEntry: prepare(`INSERT INTO raft_log (${entryColumns}) VALUES (?, ?, ?, ?, ?)`),
    deleteFrom: prepare("DELETE FROM raft_log WHERE log_index >= ?"),
    deleteThrough: prepare("DELETE FROM raft_log WHERE log_index <= ?"),
    deleteAll: prepare("DELETE FROM raft_log"),
    updateHardState: prepare(
      "UPDATE hard_state SET term = ?, vote = ?, commit_index = ? WHERE id = 1",
    ),
    updateSnapshot: prepare(
      "UPDATE raft_snapshot SET log_index = ?, term = ?, conf_state = ?, data = ? WHERE id = 1",
    ),
  };
}

/** Where a database lives, for error messages. */
interface Location {
  path: string;
  dataDir: string;
}

function corruptionError(what: string, location: Location): StorageCorruptionError {
  return new StorageCorruptionError(
    `${location.path}: ${what}; restore ${location.dataDir} from a backup, ` +
      `or remove it and re-join the cluster`,
  );
}

/** WAL and `synchronous=FULL`, read back: without them a commit is not durable. */
function configureDurability(database: DatabaseSync, path: string): void {
  const journal = database.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
  if (journal.journal_mode !== "wal") {
    throw new Error(`${path}: journal_mode is ${journal.journal_mode}, not wal: refusing to run`);
  }
  database.exec("PRAGMA synchronous = FULL");
  const { synchronous } = database.prepare("PRAGMA synchronous").get() as { synchronous: number };
  if (synchronous !== 2) {
    throw new Error(
      `${path}: PRAGMA synchronous reads back ${synchronous}, not 2 (FULL): ` +
        `refusing to run without synced commits`,
    );
  }
}

function runQuickCheck(database: DatabaseSync): void {
  const rows = database.prepare("PRAGMA quick_check(1)").all() as { quick_check: string }[];
  const first = rows[0]?.quick_check;
  if (first !== "ok") throw new QuickCheckFailure(`quick_check reports: ${first}`);
}

/** A `quick_check` finding, turned into `StorageCorruptionError` by `describeOpenError`. */
class QuickCheckFailure extends Error {}

/** A broken Raft-table invariant, turned into `StorageCorruptionError` by `describeOpenError`. */
class SchemaFailure extends Error {}

function createOrCheckSchema(database: DatabaseSync): void {
  const { objects } = database.prepare("SELECT count(*) AS objects FROM sqlite_schema").get() as {
    objects: number;
  };
  if (objects === 0) {
    database.exec(`BEGIN IMMEDIATE; ${SCHEMA_SQL} COMMIT;`);
    return;
  }
  const hasMeta = database.prepare(
    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
  ).get();
  if (hasMeta === undefined) {
    throw new SchemaFailure("the file is an SQLite database without Blixard's meta table");
  }
  const row = database.prepare("SELECT value FROM meta WHERE name = 'schema_version'").get() as
    | { value: number }
    | undefined;
  if (row === undefined) throw new SchemaFailure("the meta table has no schema_version");
  if (row.value !== STORAGE_SCHEMA_VERSION) {
    throw new SchemaFailure(
      `schema version ${row.value} is unknown to this build (it reads ` +
        `${STORAGE_SCHEMA_VERSION}); run the blixard release that wrote it`,
    );
  }
}

/** SQLite's result codes for a file that is not, or no longer, a valid database. */
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;
const SQLITE_BUSY = 5;

/** Turns a failure during open into the error an operator can act on. */
function describeOpenError(error: unknown, location: Location): Error {
  if (error instanceof StorageCorruptionError) return error;
  if (error instanceof QuickCheckFailure || error instanceof SchemaFailure) {
    return corruptionError(error.message, location);
  }
  if (!(error instanceof Error)) return new Error(`${location.path}: ${String(error)}`);
  const code = (error as { errcode?: number }).errcode;
  const message = error.message;
  if (code === SQLITE_NOTADB || message.includes("file is not a database")) {
    return corruptionError(`not an SQLite database or truncated (${message})`, location);
  }
  if (code === SQLITE_CORRUPT || message.includes("malformed")) {
    return corruptionError(`the SQLite file is damaged or truncated (${message})`, location);
  }
  if (code === SQLITE_BUSY || message.includes("database is locked")) {
    return new Error(
      `${location.path}: the database is locked by another process; ` +
        `stop the other blixard node using ${location.dataDir} first`,
      { cause: error },
    );
  }
  return new Error(`${location.path}: cannot open the database: ${message}`, { cause: error });
}

/**
 * The first broken invariant of `view`, or `null`. Checked at open (damage) and after every
 * `persist` (a bug in the caller), so both agree on what a valid log is.
 */
function logViolation(view: LogView): string | null {
  const { hardState, snapshot, lastIndex, termRuns } = view;
  if (hardState.commit > lastIndex) {
    return `commit index ${hardState.commit} is beyond the last log index ${lastIndex}`;
  }
  if (hardState.commit < snapshot.index) {
    return `commit index ${hardState.commit} is below the snapshot index ${snapshot.index}`;
  }
  let previous = { firstIndex: snapshot.index, term: snapshot.term };
  for (const run of termRuns) {
    if (run.term < previous.term) {
      return `log terms decrease at index ${run.firstIndex} (term ${run.term} after ${previous.term})`;
    }
    previous = run;
  }
  if (previous.term > hardState.term) {
    return `log term ${previous.term} is above the current term ${hardState.term}`;
  }
  return null;
}

/** The term of `index`, which must lie within the runs. */
function termAt(runs: readonly TermRun[], index: number): number {
  let low = 0;
  let high = runs.length - 1;
  // Binary search for the last run that starts at or before `index`.
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (runs[middle]!.firstIndex <= index) low = middle;
    else high = middle - 1;
  }
  const run = runs[low];
  assert(
    run !== undefined && run.firstIndex <= index,
    "term runs cover the log",
    { detail: () => `index ${index}` },
  );
  return run.term;
}

/** The runs without the entries at or after `index`. */
function truncateRuns(runs: readonly TermRun[], index: number): TermRun[] {
  return runs.filter((run) => run.firstIndex < index);
}

/** The runs without the entries up to and including `index` (log compaction). */
function dropRunsThrough(runs: readonly TermRun[], index: number, lastIndex: number): TermRun[] {
  if (index >= lastIndex) return [];
  const kept = runs.filter((_run, i) => (runs[i + 1]?.firstIndex ?? Infinity) > index + 1);
  return kept.map((run) =>
    run.firstIndex > index ? run : { firstIndex: index + 1, term: run.term }
  );
}

function entryToRow(entry: Entry): { kind: number; nodeId: number; data: Uint8Array } {
  if (entry.type === "normal") return { kind: 0, nodeId: 0, data: entry.data };
  const change = entry.change;
  const data = change.type === "addLearner" ? change.context : new Uint8Array();
  return { kind: KIND_BY_CHANGE[change.type], nodeId: change.nodeId, data };
}

function rowToEntry(row: LogRow): Entry {
  const [index, term, kind, nodeId, data] = row;
  if (kind === 0) return { type: "normal", term, index, data };
  let change: MembershipChange;
  if (kind === KIND_BY_CHANGE.addLearner) change = { type: "addLearner", nodeId, context: data };
  else if (kind === KIND_BY_CHANGE.promoteLearner) change = { type: "promoteLearner", nodeId };
  else if (kind === KIND_BY_CHANGE.removeNode) change = { type: "removeNode", nodeId };
  else throw new Error(`log entry ${index} has unknown kind ${kind}`);
  return { type: "membership", term, index, change };
}

function copyMetadata(metadata: SnapshotMetadata): SnapshotMetadata {
  const { voters, learners } = metadata.confState;
  return {
    index: metadata.index,
    term: metadata.term,
    confState: { voters: [...voters], learners: [...learners] },
  };
}

/** The JSON text a configuration is stored as (readable with the sqlite3 shell). */
export function encodeConfState(confState: ConfState): string {
  return JSON.stringify({ voters: confState.voters, learners: confState.learners });
}

/** Parses `encodeConfState` output; `null` when `text` is not a valid configuration. */
export function parseConfState(text: unknown): ConfState | null {
  if (typeof text !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const ids = (list: unknown): list is number[] =>
    Array.isArray(list) && list.every((id) => Number.isSafeInteger(id) && id >= 1);
  if (typeof value !== "object" || value === null) return null;
  const { voters, learners } = value as Record<string, unknown>;
  if (!ids(voters) || !ids(learners)) return null;
  return { ...emptyConfState(), voters, learners };
}
