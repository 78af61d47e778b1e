/**
 * Keeps the layering that `docs/architecture.md` draws true: its "Layers" block lists the
 * folders of `src/` from the top down, and a file may import only from its own folder and
 * from folders on lines below its own. This test reads that block, so the page and the
 * rule cannot drift apart, and checks the imports of every file under `src/` against it.
 *
 * Test files (`*_test.ts`) are exempt: nothing imports them, so they cannot bend the
 * layering, and a test may build its inputs with any layer.
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const SOURCE_ROOT = dirname(fileURLToPath(import.meta.url));
const ARCHITECTURE_PAGE = join(SOURCE_ROOT, "..", "docs", "architecture.md");

/** One import of a file under `src/`, as paths relative to `src/`. */
interface SourceImport {
  readonly from: string;
  readonly to: string;
}

/**
 * The layers of the page's "## Layers" section: its first fenced block, one line per
 * layer from the top down, the units of a layer separated by spaces.
 */
function parseLayers(markdown: string): string[][] {
  const section = markdown.split(/^## Layers$/m)[1];
  assert(section !== undefined, "docs/architecture.md has no '## Layers' section");
  const block = /^```text\n([\s\S]*?)^```$/m.exec(section);
  assert(block?.[1] !== undefined, "the '## Layers' section has no ```text block");
  return block[1].split("\n").map((line) => line.trim()).filter((line) => line.length > 0)
    .map((line) => line.split(/\s+/));
}

/** The unit of `path` (relative to `src/`): the longest unit that is the file or a folder above it. */
function unitOf(path: string, units: readonly string[]): string | null {
  const matches = units.filter((unit) => path === unit || path.startsWith(`${unit}/`));
  return matches.sort((a, b) => b.length - a.length)[0] ?? null;
}

/** The relative specifiers of every static and dynamic import and re-export in `source`. */
function relativeSpecifiers(source: string): string[] {
  const pattern = /\bfrom\s*["'](\.{1,2}\/[^"']+)["']|\bimport\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g;
  return [...source.matchAll(pattern)].map((match) => (match[1] ?? match[2])!);
}

/** One line per import that goes against `layers`, or per file that no layer holds. */
function violations(imports: readonly SourceImport[], layers: readonly string[][]): string[] {
  const units = layers.flat();
  const rank = new Map(layers.flatMap((line, index) => line.map((unit) => [unit, index])));
  const found = new Set<string>();
  for (const { from, to } of imports) {
    const fromUnit = unitOf(from, units);
    const toUnit = unitOf(to, units);
    if (fromUnit === null || toUnit === null) {
      found.add(`src/${fromUnit === null ? from : to} is in no layer of docs/architecture.md`);
      continue;
    }
    if (fromUnit === toUnit) continue;
    // A smaller rank is a higher line: a unit may import only units of a larger rank.
    if (rank.get(fromUnit)! >= rank.get(toUnit)!) {
      found.add(`src/${from} (${fromUnit}) imports src/${to} (${toUnit}), against the layers`);
    }
  }
  return [...found];
}

async function* sourceFiles(directory: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(directory)) {
    const path = join(directory, entry.name);
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) yield path;
  }
}

/** The imports of every non-test file under `src/` whose target is under `src/` too. */
async function importsUnderSource(): Promise<SourceImport[]> {
  const imports: SourceImport[] = [];
  for await (const file of sourceFiles(SOURCE_ROOT)) {
    const from = relative(SOURCE_ROOT, file);
    for (const specifier of relativeSpecifiers(await Deno.readTextFile(file))) {
      const to = relative(SOURCE_ROOT, normalize(join(dirname(file), specifier)));
      if (!to.startsWith("..")) imports.push({ from, to });
    }
  }
  return imports;
}

const FAKE_LAYERS = [["cli"], ["node/assembly", "client"], ["node/replication"], ["raft"]];

Deno.test("layering violations() accepts imports downwards and within a unit", () => {
  assert.deepEqual(
    violations([
      { from: "cli/cli.ts", to: "node/assembly/node.ts" },
      { from: "node/assembly/node.ts", to: "raft/mod.ts" },
      { from: "node/replication/raft_node.ts", to: "node/replication/ready_driver.ts" },
    ], FAKE_LAYERS),
    [],
  );
});

Deno.test("layering violations() names an import upwards, between peers, or out of every layer", () => {
  assert.deepEqual(
    violations([
      { from: "raft/raft_core.ts", to: "node/replication/raft_node.ts" },
      { from: "client/client.ts", to: "node/assembly/node.ts" },
      { from: "node/replication/raft_node.ts", to: "http/metrics.ts" },
    ], FAKE_LAYERS),
    [
      "src/raft/raft_core.ts (raft) imports src/node/replication/raft_node.ts (node/replication), against the layers",
      "src/client/client.ts (client) imports src/node/assembly/node.ts (node/assembly), against the layers",
      "src/http/metrics.ts is in no layer of docs/architecture.md",
    ],
  );
});

Deno.test("layering relativeSpecifiers() finds imports, type imports, re-exports and dynamic imports", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type {\n  B,\n} from "../b/b.ts";',
    'export { c } from "./c.ts";',
    'const d = await import("../../d.ts");',
    'import "./e.ts";',
    'import { z } from "zod";',
  ].join("\n");
  assert.deepEqual(relativeSpecifiers(source), [
    "./a.ts",
    "../b/b.ts",
    "./c.ts",
    "../../d.ts",
    "./e.ts",
  ]);
});

Deno.test("every import under src/ follows the layers of docs/architecture.md", async () => {
  const layers = parseLayers(await Deno.readTextFile(ARCHITECTURE_PAGE));
  const imports = await importsUnderSource();
  assert(imports.length > 100, `only ${imports.length} imports found: is the parser broken?`);
  assert.deepEqual(violations(imports, layers), []);
});

Deno.test("the layers of docs/architecture.md name every folder of src/, and only those", async () => {
  const page = await Deno.readTextFile(ARCHITECTURE_PAGE);
  const units = new Set(parseLayers(page).flat());
  const files: string[] = [];
  for await (const file of sourceFiles(SOURCE_ROOT)) files.push(relative(SOURCE_ROOT, file));
  const unplaced = files.filter((file) => unitOf(file, [...units]) === null);
  assert.deepEqual(unplaced, [], "files under src/ that no layer holds");
  const unused = [...units].filter((unit) => !files.some((file) => unitOf(file, [unit]) !== null));
  assert.deepEqual(unused, [], "layers that hold no file under src/");
  const diagram = page.split(/^## Layers$/m)[0]!;
  const undrawn = [...units].filter((unit) => !unit.endsWith(".ts"))
    .filter((unit) => !diagram.includes(`src/${unit}/`));
  assert.deepEqual(undrawn, [], "folders the diagram of docs/architecture.md does not name");
});
