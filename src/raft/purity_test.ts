/**
 * The Raft core must stay free of I/O, time and ambient randomness (DESIGN.md §1): that is
 * what makes deterministic simulation possible. This test reads every non-test source file
 * in `src/raft/` and fails when one reaches for the outside world.
 */

import { deepStrictEqual, notStrictEqual } from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const raftDirectory = dirname(fileURLToPath(import.meta.url));
/** Modules outside `src/raft/` the core may import; they are held to the same rule. */
const SHARED_PURE_MODULES = [normalize(join(raftDirectory, "..", "util", "assert.ts"))];

/** Patterns that mean I/O (the console included), wall-clock time, ambient randomness, timers or asynchrony. */
const FORBIDDEN: ReadonlyArray<{ name: string; pattern: RegExp }> = [
  { name: "Deno.*", pattern: /\bDeno\s*\./ },
  { name: "Date.now", pattern: /\bDate\s*\.\s*now\b/ },
  { name: "new Date", pattern: /\bnew\s+Date\b/ },
  { name: "performance.now", pattern: /\bperformance\s*\.\s*now\b/ },
  { name: "Math.random", pattern: /\bMath\s*\.\s*random\b/ },
  { name: "crypto", pattern: /\bcrypto\s*\./ },
  { name: "setTimeout", pattern: /\bsetTimeout\b/ },
  { name: "setInterval", pattern: /\bsetInterval\b/ },
  { name: "setImmediate", pattern: /\bsetImmediate\b/ },
  { name: "queueMicrotask", pattern: /\bqueueMicrotask\b/ },
  { name: "console", pattern: /\bconsole\s*\./ },
  { name: "await", pattern: /\bawait\b/ },
  { name: "async", pattern: /\basync\b/ },
  { name: "Promise", pattern: /\bPromise\b/ },
  { name: "fetch", pattern: /\bfetch\s*\(/ },
  { name: "process", pattern: /\bprocess\s*\./ },
  { name: "dynamic import", pattern: /\bimport\s*\(/ },
];

/** Every module specifier in `source` (static imports and re-exports). */
function importSpecifiers(source: string): string[] {
  const specifiers: string[] = [];
  for (const match of source.matchAll(/\b(?:import|export)\b[^'"]*?\bfrom\s*["']([^"']+)["']/g)) {
    specifiers.push(match[1]!);
  }
  for (const match of source.matchAll(/\bimport\s*["']([^"']+)["']/g)) specifiers.push(match[1]!);
  return specifiers;
}

/** Why `source` (the file at `path`) is not pure, or an empty list. */
export function purityViolations(path: string, source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
  const violations: string[] = [];
  for (const { name, pattern } of FORBIDDEN) {
    if (pattern.test(code)) violations.push(`${path}: uses ${name}`);
  }
  for (const specifier of importSpecifiers(code)) {
    const target = specifier.startsWith(".")
      ? normalize(join(dirname(path), specifier))
      : specifier;
    const inside = specifier.startsWith(".") &&
      (!relative(raftDirectory, target).startsWith("..") || SHARED_PURE_MODULES.includes(target));
    if (!inside) violations.push(`${path}: imports ${specifier}, outside src/raft/`);
  }
  return violations;
}

function sourceFiles(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) files.push(path);
  }
  return files;
}

Deno.test("src/raft/ (and src/util/assert.ts) has no I/O, clock, randomness, timers, await, or imports from outside src/raft/", () => {
  const files = [...sourceFiles(raftDirectory), ...SHARED_PURE_MODULES];
  notStrictEqual(files.length, 0);
  const violations = files.flatMap((path) => purityViolations(path, readFileSync(path, "utf8")));
  deepStrictEqual(violations, []);
});

Deno.test("purityViolations() catches I/O and outside imports, and ignores them in comments", () => {
  const path = join(raftDirectory, "example.ts");
  deepStrictEqual(
    purityViolations(path, 'import { x } from "./types.ts";\n// Date.now() is banned\n'),
    [],
  );
  deepStrictEqual(purityViolations(path, "const t = Date.now();"), [`${path}: uses Date.now`]);
  deepStrictEqual(purityViolations(path, "await Deno.readFile('x');"), [
    `${path}: uses Deno.*`,
    `${path}: uses await`,
  ]);
  deepStrictEqual(
    purityViolations(path, 'import { MemoryStorage } from "../storage/memory_storage.ts";'),
    [
      `${path}: imports ../storage/memory_storage.ts, outside src/raft/`,
    ],
  );
  deepStrictEqual(purityViolations(path, 'import { assert } from "../util/assert.ts";'), []);
  deepStrictEqual(purityViolations(path, 'import { sleep } from "../util/sleep.ts";'), [
    `${path}: imports ../util/sleep.ts, outside src/raft/`,
  ]);
  deepStrictEqual(purityViolations(path, 'import { z } from "zod";'), [
    `${path}: imports zod, outside src/raft/`,
  ]);
  deepStrictEqual(purityViolations(path, "const r = Math.random();"), [
    `${path}: uses Math.random`,
  ]);
  deepStrictEqual(purityViolations(path, "setImmediate(() => console.log(1));"), [
    `${path}: uses setImmediate`,
    `${path}: uses console`,
  ]);
});
