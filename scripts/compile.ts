/**
 * `deno task compile`: builds the single `dist/blixard` binary with `deno compile`.
 *
 * The binary embeds the minified bundle of `main.ts` and its npm dependencies
 * (`scripts/bundle.ts`, built first: it starts a node ~55 ms sooner than the sources
 * would) and the Iroh native addon for this platform; the `deno` npm package (the 95 MB
 * Deno binary that `npm ci` installs to run the tooling) is left out. `deno compile` downloads its runtime base
 * binary (`denort`) from dl.deno.land on first use; on a machine without that access, set
 * `DENORT_BIN=/path/to/denort` (the `denort` of the same Deno version, from the release
 * archive `denort-<target>.zip`) and Deno uses it instead.
 *
 * Usage: deno task compile [--target x86_64-unknown-linux-gnu] [--output dist/blixard]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { IROH_ADDON_PACKAGES } from "../src/transport/iroh_addon.ts";
import { bundleNode } from "./bundle.ts";

/**
 * V8 flags every node runs with: baked into the binary here, and passed by `deno task node`
 * and the bench's nodes. A young generation capped at 4 MiB per semi-space (V8's default
 * grows to 16 under load and never shrinks back) keeps a node's memory after a burst of
 * writes about 17–19 MiB lower, at no measurable CPU cost per write (`docs/benchmarks.md`,
 * "Memory after writes").
 */
export const NODE_V8_FLAGS = ["--max-semi-space-size=4"];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      target: { type: "string", default: Deno.build.target },
      output: { type: "string", default: "dist/blixard" },
    },
  });
  const target = values.target;
  const addonPackage = IROH_ADDON_PACKAGES[target];
  if (addonPackage === undefined) {
    console.error(
      `--target ${target}: no Iroh addon package is known for it; use one of ${
        Object.keys(IROH_ADDON_PACKAGES).join(", ")
      }`,
    );
    Deno.exit(2);
  }
  const addonDir = `node_modules/@number0/${addonPackage}`;
  try {
    Deno.statSync(addonDir);
  } catch {
    console.error(
      `${addonDir} is missing: npm installs only this platform's addon; run \`npm ci\` on a ${target} machine`,
    );
    Deno.exit(1);
  }
  let entry: string;
  try {
    entry = await bundleNode();
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
  const args = [
    "compile",
    "--allow-all",
    `--v8-flags=${NODE_V8_FLAGS.join(",")}`,
    "--target",
    target,
    "--output",
    values.output,
    "--include",
    "node_modules/@number0/iroh",
    "--include",
    addonDir,
    "--exclude",
    "node_modules/deno",
    // The chunks come along: deno compile follows their import() of literal paths.
    entry,
  ];
  console.error(`deno ${args.join(" ")}`);
  if (Deno.env.get("DENORT_BIN") === undefined) {
    console.error(
      "note: without DENORT_BIN, deno compile downloads its runtime from dl.deno.land; " +
        "offline, set DENORT_BIN=/path/to/denort",
    );
  }
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  if (code !== 0) {
    console.error(
      `deno compile failed (exit ${code}); if it could not download the runtime, set DENORT_BIN to a local denort ` +
        `of Deno ${Deno.version.deno} for ${target}`,
    );
  }
  Deno.exit(code);
}
