/**
 * The command line: `blixard <command> …` dispatched to the node or to the operator
 * commands, with the exit codes of DESIGN.md section 4a (0 success, 1 operation failed,
 * 2 usage error). Every error reaches the user as one line on stderr.
 *
 * @module
 */

import { HelpRequested, reasonOf, StartupError, UsageError } from "../util/errors.ts";
import { MAIN_USAGE } from "./usage.ts";
import { VERSION } from "../version.ts";

/** The environment as the CLI sees it: variable name → value. */
export type Environment = Record<string, string | undefined>;

/** Where the CLI writes: stdout for results, stderr for messages. Tests capture both. */
export interface CliOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Writes to the process's own stdout and stderr. */
export const processOutput: CliOutput = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
};

/** Runs one command line and resolves to the process exit code. */
export async function runCli(
  args: readonly string[],
  options: { env: Environment; output?: CliOutput },
): Promise<number> {
  const output = options.output ?? processOutput;
  try {
    return await dispatch(args, options.env, output);
  } catch (error) {
    return reportFailure(error, output);
  }
}

async function dispatch(
  args: readonly string[],
  env: Environment,
  output: CliOutput,
): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case undefined:
      output.stderr(MAIN_USAGE);
      return 2;
    case "-h":
    case "--help":
    case "help":
      output.stdout(MAIN_USAGE);
      return 0;
    case "-V":
    case "--version":
    case "version":
      output.stdout(`blixard ${VERSION}\n`);
      return 0;
    case "node": {
      const { runNodeCommand } = await import("./node_command.ts");
      return await runNodeCommand(rest, env);
    }
    case "cluster": {
      const { runClusterCommand } = await import("./cluster_command.ts");
      return await runClusterCommand(rest, { env, output });
    }
    case "kv": {
      const { runKvCommand } = await import("./kv_command.ts");
      return await runKvCommand(rest, { env, output });
    }
    default:
      throw new UsageError(`unknown command '${command}'; see 'blixard --help'`);
  }
}

function reportFailure(error: unknown, output: CliOutput): number {
  if (error instanceof HelpRequested) {
    output.stdout(error.text);
    return error.exitCode;
  }
  if (error instanceof UsageError) {
    output.stderr(`blixard: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof StartupError) {
    output.stderr(`blixard: ${error.message}\n`);
    return error.exitCode;
  }
  // Not one of ours: still one line for the operator, and the stack for a bug report.
  output.stderr(`blixard: unexpected error: ${reasonOf(error)}\n`);
  if (error instanceof Error && error.stack !== undefined) output.stderr(`${error.stack}\n`);
  return 1;
}

const encoder = new TextEncoder();

function writeAll(stream: { writeSync(bytes: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}
