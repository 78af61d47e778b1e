/**
 * Cluster secrets for end-to-end tests: fixed, valid secret texts (32 bytes as 64 hex
 * digits, so a leaked one is easy to search for in the output) and the 0600 files that
 * operators write.
 *
 * @module
 */

import { ClusterSecret, decodeSecretText } from "../../src/auth/cluster_secret.ts";

/** A valid secret text (32 bytes, hex). */
export const SECRET_TEXT = "7f3a9c1d5b2e8f4a6c0e1d2b3a495867e2e0c1a5b7d9e3f1a2c4b6d8e0f2a4c6";
/** Another valid secret text, of another cluster. */
export const OTHER_SECRET_TEXT = "0b9d4e7a2c6f1a3e5d7c9b1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e";

/** A 0600 file `dir/name` holding `text` and a newline, the way an operator writes one. */
export function writeSecretFile(dir: string, name: string, text: string): string {
  const path = `${dir}/${name}`;
  Deno.writeTextFileSync(path, `${text}\n`);
  Deno.chmodSync(path, 0o600);
  return path;
}

/** The `ClusterSecret` that `text` (a valid secret text) stands for. */
export async function secretOf(text: string): Promise<ClusterSecret> {
  const bytes = decodeSecretText(new TextEncoder().encode(text));
  if (bytes === null) throw new Error("not a valid secret text");
  return await ClusterSecret.fromBytes(bytes);
}
