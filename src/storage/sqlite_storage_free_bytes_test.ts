import { strict as assert } from "node:assert";
import { SqliteStorage } from "./sqlite_storage.ts";

Deno.test("SqliteStorage.open() creates a missing data dir and freeBytes() reports its file system's free bytes", () => {
  const parent = Deno.makeTempDirSync({ prefix: "blixard-free-bytes-" });
  try {
    const storage = SqliteStorage.open(`${parent}/a/b`);
    try {
      const free = storage.freeBytes();
      assert.ok(free !== null && Number.isInteger(free) && free > 0, `freeBytes() = ${free}`);
    } finally {
      storage.close();
    }
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
});
