/**
 * Runs the system tools the harness drives (`nft`, `mount`, `umount`) and tells whether
 * they can be used here: the faults that need them need root and the tool installed, and a
 * run without them skips those faults with one line saying why.
 *
 * @module
 */

/** A command longer than this is stuck (a tool waiting on a lock): the harness gives up. */
const COMMAND_WAIT_MS_MAX = 30_000;

/** What a command printed and how it ended. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command args…`, feeding `stdin` when given, within a bounded time. */
export async function runCommand(
  command: string,
  args: readonly string[],
  options: { stdin?: string } = {},
): Promise<CommandResult> {
  const killer = new AbortController();
  const timer = setTimeout(() => killer.abort(), COMMAND_WAIT_MS_MAX);
  try {
    const child = new Deno.Command(command, {
      args: [...args],
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal: killer.signal,
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command and throws, naming it and its stderr, unless it exits 0. */
export async function runChecked(
  command: string,
  args: readonly string[],
  options: { stdin?: string } = {},
): Promise<string> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed with exit ${result.code}: ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

/**
 * Why the faults that need root and `tool` cannot run here, or `null` when they can. The
 * tool is looked up on `PATH` and in the sbin directories, where Debian installs `nft`.
 */
export async function unavailableReason(tool: string): Promise<string | null> {
  if (Deno.uid() !== 0) return `needs root (running as uid ${Deno.uid()})`;
  if (await toolPath(tool) === null) return `${tool} is not installed (apt-get install ${tool})`;
  return null;
}

/** The full path of `tool`, or `null` when it is nowhere to be found. */
export async function toolPath(tool: string): Promise<string | null> {
  const path = Deno.env.get("PATH") ?? "";
  const directories = [...path.split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  for (const directory of directories) {
    if (directory === "") continue;
    const candidate = `${directory}/${tool}`;
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}
