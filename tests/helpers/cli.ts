/**
 * The `blixard` command line as a child process, for tests that check what an operator
 * sees: the exit code, stdout and stderr of `main.ts cluster …` and `main.ts kv …`.
 *
 * @module
 */

import { childEnv } from "./child_env.ts";

const MAIN_PATH = new URL("../../main.ts", import.meta.url).pathname;
/**
 * A command that runs longer than this is killed and the test fails: every command has a
 * `--timeout` of its own, so only a hang gets here.
 */
const COMMAND_WAIT_MS_MAX = 60_000;

/** What one run of the command printed and how it ended. */
export interface CliRun {
  /** The process exit code. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `blixard <args…>` (`main.ts` under the Deno that runs the test, or the script at
 * `options.mainPath`: the bundle) and collects its output. The peer cache lives in
 * `options.cacheHome` (`XDG_CACHE_HOME`) when given, else in a temporary directory of this
 * run alone, so that no run reads another's cache.
 */
export async function runBlixard(
  args: readonly string[],
  options: { cacheHome?: string; mainPath?: string } = {},
): Promise<CliRun> {
  const cacheHome = options.cacheHome ??
    Deno.makeTempDirSync({ prefix: `blixard-cli-cache-${Deno.pid}-` });
  const killer = new AbortController();
  const timer = setTimeout(() => killer.abort(), COMMAND_WAIT_MS_MAX);
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", options.mainPath ?? MAIN_PATH, ...args],
      env: { ...childEnv(), XDG_CACHE_HOME: cacheHome },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: killer.signal,
    }).output();
    const decoder = new TextDecoder();
    const run = {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
    if (killer.signal.aborted) {
      throw new Error(
        `blixard ${args.join(" ")} ran over ${COMMAND_WAIT_MS_MAX} ms: ${run.stderr}`,
      );
    }
    return run;
  } finally {
    clearTimeout(timer);
    if (options.cacheHome === undefined) Deno.removeSync(cacheHome, { recursive: true });
  }
}

/** `run`'s stderr as lines, without the final empty one. */
export function stderrLines(run: CliRun): string[] {
  return run.stderr.split("\n").filter((line) => line.length > 0);
}

/** A description of `run` for assertion messages. */
export function describeRun(run: CliRun): string {
  return `exit ${run.code}, stdout ${JSON.stringify(run.stdout.slice(0, 500))}, stderr ${
    JSON.stringify(run.stderr.slice(0, 2000))
  }`;
}
