/**
 * Where the native addon of `@number0/iroh` lives for each build target, and its loading.
 *
 * The package's own `index.js` is a CommonJS loader that picks the platform's addon by
 * trial (it probes for musl, tries a file beside itself, then the platform package). Under
 * Deno, loading it pulls in the Node layer's CommonJS loader (`node:module`) and `node:fs`:
 * about 20–40 ms of a node's start-up CPU (`docs/benchmarks.md`, "Issue 13: where each
 * target stands"). Opening the addon directly with `process.dlopen` skips all of that; the
 * package's loader stays as the fallback for a platform this table does not know.
 *
 * `scripts/compile.ts` embeds the same package in a binary, so the two cannot disagree.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import type * as IrohTypes from "../../node_modules/@number0/iroh/index.d.ts";

/** The binding's exports, as `@number0/iroh`'s `index.d.ts` declares them. */
export type IrohBinding = typeof IrohTypes;

/** The npm package (under `@number0/`) that holds the addon, by Deno build target. */
export const IROH_ADDON_PACKAGES: Readonly<Record<string, string>> = {
  "x86_64-unknown-linux-gnu": "iroh-linux-x64-gnu",
  "aarch64-unknown-linux-gnu": "iroh-linux-arm64-gnu",
  "x86_64-apple-darwin": "iroh-darwin-x64",
  "aarch64-apple-darwin": "iroh-darwin-arm64",
  "x86_64-pc-windows-msvc": "iroh-win32-x64-msvc",
};

/**
 * The addon's file for `target`, relative to `node_modules`
 * (`@number0/iroh-linux-x64-gnu/iroh.linux-x64-gnu.node`: napi-rs names the file after its
 * package), or `null` for a target without a known package.
 */
export function irohAddonFile(target: string): string | null {
  const addonPackage = IROH_ADDON_PACKAGES[target];
  if (addonPackage === undefined) return null;
  return `@number0/${addonPackage}/${addonPackage.replace("-", ".")}.node`;
}

/**
 * The addon's path for `file` (as {@linkcode irohAddonFile} names it): the first
 * `node_modules/FILE` in `fromDir` or a folder above it, as Node resolves packages, or
 * `null`. Looked up rather than fixed relative to this module, because the same code also
 * runs from the bundle (`scripts/bundle.ts`, in `dist/`) and from the compiled binary.
 */
export function findIrohAddon(file: string, fromDir: URL): string | null {
  for (let dir = fromDir;; dir = new URL("..", dir)) {
    const candidate = new URL(`node_modules/${file}`, dir);
    try {
      if (Deno.statSync(candidate).isFile) return fileURLToPath(candidate);
    } catch {
      // Not in this folder: look one up.
    }
    if (dir.pathname === "/" || new URL("..", dir).href === dir.href) return null;
  }
}

/**
 * The binding: this platform's addon opened directly, or, when that fails (an unknown
 * target, a missing file), whatever the package's own loader finds, with its errors.
 */
export function loadIrohBinding(): IrohBinding {
  const file = irohAddonFile(Deno.build.target);
  const path = file === null ? null : findIrohAddon(file, new URL(".", import.meta.url));
  if (path !== null) {
    const addon = { exports: {} };
    try {
      process.dlopen(addon, path);
      return addon.exports as IrohBinding;
    } catch {
      // The package's loader below reports what is missing, platform by platform.
    }
  }
  const { createRequire } = process.getBuiltinModule("node:module");
  return createRequire(import.meta.url)("@number0/iroh") as IrohBinding;
}
