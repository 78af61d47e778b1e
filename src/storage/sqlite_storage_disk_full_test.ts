/**
 * `SqliteStorage` on a full disk: SQLite answers `SQLITE_FULL` once the file may not grow
 * (`PRAGMA max_page_count` at its current size), and may then roll back the whole
 * transaction itself. The caller must get that error, and the storage must be as before.
 */

import { ok, strictEqual, throws } from "node:assert/strict";
import type { Entry } from "../raft/types.ts";
import { SqliteStorage } from "./sqlite_storage.ts";
import { isDiskFullError } from "./storage.ts";

function bigEntries(first: number, count: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    type: "normal" as const,
    term: 1,
    index: first + i,
    data: new Uint8Array(64 * 1024),
  }));
}

Deno.test("SqliteStorage: a write that finds the disk full inside a nested transaction throws SQLITE_FULL and leaves the storage as before; it succeeds once there is room", () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-disk-full-" });
  const storage = SqliteStorage.open(dataDir);
  try {
    storage.persist({ hardState: { term: 1, vote: 1, commit: 0 }, entries: [], snapshot: null });
    const { page_count } = storage.database.prepare("PRAGMA page_count").get() as {
      page_count: number;
    };
    storage.database.exec(`PRAGMA max_page_count = ${page_count}`);
    // `persist` inside `transaction` is a savepoint, as in the Ready loop.
    throws(
      () =>
        storage.transaction(() =>
          storage.persist({ hardState: null, entries: bigEntries(1, 4), snapshot: null })
        ),
      (error) => isDiskFullError(error),
    );
    strictEqual(storage.lastIndex(), 0);
    strictEqual(storage.inTransaction(), false);
    ok(!storage.database.isTransaction, "nothing left open");

    storage.database.exec("PRAGMA max_page_count = 4294967294");
    storage.transaction(() =>
      storage.persist({ hardState: null, entries: bigEntries(1, 4), snapshot: null })
    );
    strictEqual(storage.lastIndex(), 4);
  } finally {
    storage.close();
    Deno.removeSync(dataDir, { recursive: true });
  }
});
