import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "./zod_mini.ts";

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

// Users read these issues. This file imports no classic zod, which would set the locale
// itself: only zod_mini.ts's own configuration makes them English.
Deno.test("issues of the zod_mini schemas read in English, as with classic zod", () => {
  const schema = z.strictObject({ id: z.int().check(z.minimum(1)), name: z.string() });
  const result = z.safeParse(schema, { id: 0, name: 7, extra: true });
  assert.deepEqual(result.error?.issues.map((issue) => issue.message), [
    "Too small: expected number to be >=1",
    "Invalid input: expected string, received number",
    'Unrecognized key: "extra"',
  ]);
});
