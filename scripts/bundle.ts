/**
 * `deno task bundle`: the whole program as one minified JavaScript file, `dist/blixard.js`,
 * which `deno task compile` embeds in the binary and the bench runs its nodes from.
 *
 * Why: a node spends most of its start loading code, and how much code counts more than how
 * many modules. From the TypeScript sources Deno loads ~150 modules whose cached output is
 * about 4 MB (comments, and an inline source map each); the minified bundle is about 1 MB.
 * A single node then reaches `/health` ~55 ms sooner with ~70 ms less CPU, and a ticket
 * join becomes a voter ~55 ms sooner (`docs/benchmarks.md`, "The minified bundle").
 *
 * - `--keep-names`: functions and classes keep their names, so stack traces and error
 *   names read as in the sources (about 7 ms of start-up).
 * - The source map is written beside the bundle (`dist/blixard.js.map`) but not linked
 *   from it: Deno reads a linked map whole at start-up, which cost ~110 ms. Map positions
 *   of a stack trace back to the sources with it when needed.
 * - The Iroh addon stays a file: `src/transport/iroh_addon.ts` finds it in the nearest
 *   `node_modules` above the bundle.
 * - The CommonJS packages inside (prom-client, multicast-dns, msgpackr) `require()` Node's
 *   modules. Without `--minify`, `deno bundle` defines `require` for them with
 *   `createRequire`; with it (Deno 2.9.6) it leaves esbuild's stand-in, which throws
 *   "Dynamic require of … is not supported". {@linkcode defineRequire} adds the definition.
 *
 * Usage: deno task bundle [--output dist/blixard.js]
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Where the bundle goes unless told otherwise, relative to the repository. */
export const BUNDLE_PATH = "dist/blixard.js";

const REPO_ROOT = new URL("../", import.meta.url);

/**
 * Builds the bundle of `main.ts` at `output` (relative to the repository, or absolute)
 * and resolves to its absolute path; throws with `deno bundle`'s own message on failure.
 */
export async function bundleNode(output: string = BUNDLE_PATH): Promise<string> {
  const path = new URL(output, REPO_ROOT).pathname;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--platform",
      "deno",
      "--minify",
      "--keep-names",
      "--sourcemap=external",
      "--output",
      path,
      "main.ts",
    ],
    cwd: REPO_ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `deno bundle failed (exit ${code}): ${new TextDecoder().decode(stderr).trim()}`,
    );
  }
  const bundled = defineRequire({
    code: Deno.readTextFileSync(path),
    map: Deno.readTextFileSync(`${path}.map`),
  });
  Deno.writeTextFileSync(path, bundled.code);
  Deno.writeTextFileSync(`${path}.map`, bundled.map);
  return path;
}

/** What esbuild's stand-in for an undefined `require` throws. */
const REQUIRE_STAND_IN = "Dynamic require of";
/** What `deno bundle` names `createRequire` where it defines `require` itself. */
const DENO_REQUIRE_DEFINITION = "__deno_internal_createRequire";
/**
 * The line that defines `require` for the bundle's CommonJS modules. `node:module` loads on
 * the first call, not at start (~6 ms): a node needs it only for `/metrics` and `--mdns`.
 */
export const REQUIRE_DEFINITION = 'import __blixardProcess from "node:process"; ' +
  "let __blixardRequire; function require(...args) { __blixardRequire ??= " +
  '__blixardProcess.getBuiltinModule("node:module").createRequire(import.meta.url); ' +
  "return __blixardRequire(...args); }";

/**
 * A minified bundle (and its source map) with `require` defined in its first line when it
 * has only esbuild's stand-in for it; unchanged otherwise (no CommonJS inside, a `deno
 * bundle` that defines it itself, or defined here already). The stand-in looks `require` up
 * when called, so a module-level definition is what it finds. The source map gains one empty line in front
 * (a `;` in its mappings), so that it still points at the same code.
 */
export function defineRequire(bundle: { code: string; map: string }): {
  code: string;
  map: string;
} {
  const defined = bundle.code.startsWith(REQUIRE_DEFINITION) ||
    bundle.code.includes(DENO_REQUIRE_DEFINITION);
  if (defined || !bundle.code.includes(REQUIRE_STAND_IN)) {
    return bundle;
  }
  const map = JSON.parse(bundle.map) as { mappings: string };
  map.mappings = `;${map.mappings}`;
  return { code: `${REQUIRE_DEFINITION}\n${bundle.code}`, map: JSON.stringify(map) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { output: { type: "string", default: BUNDLE_PATH } },
  });
  try {
    const path = await bundleNode(values.output);
    console.error(`${path}: ${(Deno.statSync(path).size / 1024).toFixed(0)} KiB`);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
