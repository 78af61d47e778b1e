/**
 * Stores for tests: a fresh `SqliteStateStore` in a temp dir (and the `SqliteStorage` it
 * lives in), removed when the test is done.
 *
 * @module
 */

import { SqliteStorage } from "../storage/sqlite_storage.ts";
import { SqliteStateStore } from "./sqlite_state_store.ts";

/** A state store on a fresh SQLite database, with what it takes to reopen and remove it. */
export interface SqliteFixture {
  dataDir: string;
  storage: SqliteStorage;
  store: SqliteStateStore;
}

/**
 * Runs `body` with a fresh SQLite state store whose storage holds a hard state committed
 * up to `commit` (entries 1…`commit` of term 1), so that applied indexes up to it are valid.
 * Closes and removes everything afterwards, even when `body` throws.
 */
export function withSqliteStore(
  body: (fixture: SqliteFixture) => void,
  options: { commit?: number } = {},
): void {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-state-" });
  const storage = SqliteStorage.open(dataDir);
  const fixture = { dataDir, storage, store: new SqliteStateStore(storage) };
  try {
    const commit = options.commit ?? 1000;
    const data = new Uint8Array();
    const entries = Array.from(
      { length: commit },
      (_, i) => ({ type: "normal" as const, term: 1, index: i + 1, data }),
    );
    storage.persist({ hardState: { term: 1, vote: 0, commit }, entries, snapshot: null });
    body(fixture);
  } finally {
    fixture.storage.close();
    Deno.removeSync(dataDir, { recursive: true });
  }
}
