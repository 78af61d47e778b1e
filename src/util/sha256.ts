/**
 * SHA-256 through `node:crypto`, with that module loaded on first use.
 *
 * Only invites and backups hash, never a plain start, yet a static `import "node:crypto"`
 * made every start load Deno's Node-layer crypto (about 10 ms of CPU, docs/benchmarks.md,
 * "Issue 13: where each target stands"). `process.getBuiltinModule` loads it synchronously
 * on the first call, so the callers stay synchronous.
 *
 * @module
 */

import process from "node:process";
import type { Hash } from "node:crypto";

/** A SHA-256 hash to feed with `update()` and finish with `digest()`. */
export function createSha256(): Hash {
  return process.getBuiltinModule("node:crypto").createHash("sha256");
}

/** The SHA-256 digest of `bytes`. */
export function sha256(bytes: Uint8Array | string): Uint8Array {
  return new Uint8Array(createSha256().update(bytes).digest());
}
