/**
 * Helpers for the CLI's tests; not part of the command line itself.
 *
 * @module
 */

import type { CliOutput } from "./cli.ts";

/** A `CliOutput` that keeps what a command printed, in `out` (stdout) and `err` (stderr). */
export function captureOutput(): CliOutput & { out: string; err: string } {
  const output = {
    out: "",
    err: "",
    stdout: (text: string) => void (output.out += text),
    stderr: (text: string) => void (output.err += text),
  };
  return output;
}
