/**
 * `deno task bundle`: the whole program as minified JavaScript in `dist/bundle/`, entry
 * `dist/bundle/main.js`, which `deno task compile` embeds in the binary and the bench runs
 * its nodes from.
 *
 * Why: a node spends most of its start loading code, and how much code counts more than how
 * many modules. From the TypeScript sources Deno loads ~150 modules whose cached output is
 * about 4 MB (comments, and an inline source map each); the minified bundle is about 1 MB.
 * A single node then reaches `/health` ~55 ms sooner with ~70 ms less CPU, and a ticket
 * join becomes a voter ~55 ms sooner (`docs/benchmarks.md`, "The minified bundle").
 *
 * - `--code-splitting`: what the program imports dynamically becomes chunks of its own
 *   that a node loads only when it needs them: the `cluster` and `kv` commands,
 *   prom-client (on the first `/metrics`), and mDNS discovery (only with mDNS on). A node
 *   then loads 420 KiB at start instead of 579 (`docs/benchmarks.md`, "What the bundle
 *   loads"). `deno compile` embeds the chunks too: it follows `import()` of a literal path.
 * - `--keep-names`: functions and classes keep their names, so stack traces and error
 *   names read as in the sources (about 7 ms of start-up).
 * - The source maps are written beside the files (`main.js.map`…) but not linked from
 *   them: Deno reads a linked map whole at start-up, which cost ~110 ms. Map positions
 *   of a stack trace back to the sources with them when needed.
 * - The Iroh addon stays a file: `src/transport/iroh_addon.ts` finds it in the nearest
 *   `node_modules` above the bundle.
 * - The CommonJS packages inside (prom-client, multicast-dns, msgpackr) `require()` Node's
 *   modules. Without `--minify`, `deno bundle` defines `require` for them with
 *   `createRequire`; with it (Deno 2.9.6) it leaves esbuild's stand-in, which throws
 *   "Dynamic require of … is not supported". {@linkcode defineRequire} adds the definition
 *   to the file that holds the stand-in.
 *
 * Usage: deno task bundle [--outdir dist/bundle]
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The directory the bundle goes to unless told otherwise, relative to the repository. */
export const BUNDLE_DIR = "dist/bundle";
/** The bundle's entry file in its directory: `main.ts`, bundled. */
export const BUNDLE_ENTRY = "main.js";

const REPO_ROOT = new URL("../", import.meta.url);

/**
 * Builds the bundle of `main.ts` into the directory `outdir` (relative to the repository,
 * or absolute) and resolves to the absolute path of its entry file; throws with `deno
 * bundle`'s own message on failure. The files of an earlier bundle there are removed first:
 * their chunk names change with their contents.
 */
export async function bundleNode(outdir: string = BUNDLE_DIR): Promise<string> {
  const dir = new URL(`${outdir.replace(/\/+$/, "")}/`, REPO_ROOT).pathname;
  Deno.mkdirSync(dir, { recursive: true });
  for (const file of bundleFiles(dir)) Deno.removeSync(`${dir}${file}`);
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--platform",
      "deno",
      "--minify",
      "--keep-names",
      "--code-splitting",
      "--sourcemap=external",
      "--outdir",
      dir,
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
  for (const file of bundleFiles(dir).filter((name) => name.endsWith(".js"))) {
    const path = `${dir}${file}`;
    const bundled = {
      code: Deno.readTextFileSync(path),
      map: Deno.readTextFileSync(`${path}.map`),
    };
    const defined = defineRequire(bundled);
    if (defined === bundled) continue;
    Deno.writeTextFileSync(path, defined.code);
    Deno.writeTextFileSync(`${path}.map`, defined.map);
  }
  return `${dir}${BUNDLE_ENTRY}`;
}

/** The names of the files in `dir` that `deno bundle` writes: JavaScript and source maps. */
function bundleFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((entry) => entry.isFile && /\.js(\.map)?$/.test(entry.name))
    .map((entry) => entry.name);
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
 * A minified bundle's file (and its source map) with `require` defined in its first line
 * when it has only esbuild's stand-in for it; unchanged otherwise (no CommonJS inside, a `deno
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
    options: { outdir: { type: "string", default: BUNDLE_DIR } },
  });
  try {
    const entry = await bundleNode(values.outdir);
    console.error(entry);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
