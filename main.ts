/**
 * The `blixard` binary: `blixard node …` runs a cluster node, `blixard cluster …` and
 * `blixard kv …` talk to one. See `blixard --help` and `docs/architecture.md`.
 *
 * @module
 */

import { runCli } from "./src/cli/cli.ts";

if (import.meta.main) {
  const exitCode = await runCli(Deno.args, { env: Deno.env.toObject() });
  Deno.exit(exitCode);
}
