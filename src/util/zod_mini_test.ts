import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SOURCE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every `.ts` file under `dir`, test files left out. */
async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) yield path;
  }
}

// The classic API's first schema costs every process that builds one about 15 ms of CPU,
// and its schemas cost more to build and to run than mini's (docs/benchmarks.md, "zod/mini
// everywhere in src/"): one classic import on a start's path brings that back.
Deno.test("no file under src/ imports classic zod: schemas use src/util/zod_mini.ts", async () => {
  const classic: string[] = [];
  let files = 0;
  for await (const path of sourceFiles(SOURCE_ROOT)) {
    files++;
    const source = await Deno.readTextFile(path);
    if (/\bfrom\s*["']zod["']|import\(\s*["']zod["']\s*\)/.test(source)) classic.push(path);
  }
  assert(files > 100, `only ${files} files found: is the walk broken?`);
  assert.deepEqual(classic, []);
});
