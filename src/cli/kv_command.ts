/**
 * `blixard kv put|get|delete|list`: the key/value API from the command line (DESIGN.md
 * section 4a). Writes go through the leader and print the commit index; reads are
 * linearizable from any member. Keys and values are taken as UTF-8 text.
 *
 * @module
 */

import type { CliOutput, Environment } from "./cli.ts";
import { type ClientCommandSpec, type ClientFlags, runClientCommand } from "./client_flags.ts";
import { UsageError } from "./errors.ts";

const HELP = `Usage:
  blixard kv put KEY VALUE --peer host:port     Sets KEY; prints the commit index.
  blixard kv get KEY       --peer host:port     Prints the value (linearizable); exit 1 when absent.
  blixard kv delete KEY    --peer host:port     Removes KEY; prints the commit index.
  blixard kv list [PREFIX] --peer host:port     Prints KEY<TAB>VALUE lines in key order.

Flags: --timeout 10s (deadline, retries included), --json (list: one JSON array).
--peer is any member's host:port (its --bind address); BLIXARD_PEER works too.
Exit codes: 0 success, 1 operation failed (or key absent), 2 usage error.
`;

const spec = (usage: string, allowed: ClientCommandSpec["allowed"]): ClientCommandSpec => ({
  usage,
  allowed,
  help: HELP,
});
const SPECS = {
  put: spec("blixard kv put KEY VALUE --peer host:port", ["peer", "timeout"]),
  get: spec("blixard kv get KEY --peer host:port", ["peer", "timeout"]),
  delete: spec("blixard kv delete KEY --peer host:port", ["peer", "timeout"]),
  list: spec("blixard kv list [PREFIX] --peer host:port [--json]", ["peer", "timeout", "json"]),
};

const decoder = new TextDecoder();

/** Runs `blixard kv <subcommand> …`; resolves to the exit code. */
export async function runKvCommand(
  args: readonly string[],
  context: { env: Environment; output: CliOutput },
): Promise<number> {
  const [subcommand, ...rest] = args;
  const { output } = context;
  switch (subcommand) {
    case "put":
      return await runClientCommand(
        rest,
        { ...context, spec: SPECS.put },
        async (client, flags) => {
          const [key, value] = positionals(flags, 2, SPECS.put.usage);
          const { index } = await client.put(key!, value!, { timeoutMs: flags.timeoutMs });
          output.stdout(`${index}\n`);
          return 0;
        },
      );
    case "get":
      return await runClientCommand(
        rest,
        { ...context, spec: SPECS.get },
        async (client, flags) => {
          const [key] = positionals(flags, 1, SPECS.get.usage);
          const value = await client.get(key!, { timeoutMs: flags.timeoutMs });
          if (value === null) {
            output.stderr(`blixard: key ${JSON.stringify(key)} not found\n`);
            return 1;
          }
          output.stdout(`${decoder.decode(value)}\n`);
          return 0;
        },
      );
    case "delete":
      return await runClientCommand(
        rest,
        { ...context, spec: SPECS.delete },
        async (client, flags) => {
          const [key] = positionals(flags, 1, SPECS.delete.usage);
          const { index, existed } = await client.delete(key!, { timeoutMs: flags.timeoutMs });
          output.stdout(`${index}\n`);
          if (!existed) output.stderr(`blixard: key ${JSON.stringify(key)} did not exist\n`);
          return 0;
        },
      );
    case "list":
      return await runClientCommand(
        rest,
        { ...context, spec: SPECS.list },
        async (client, flags) => {
          if (flags.positionals.length > 1) {
            throw new UsageError(
              `too many arguments; usage: ${SPECS.list.usage}`,
            );
          }
          const items = await client.list(flags.positionals[0] ?? "", {
            timeoutMs: flags.timeoutMs,
          });
          const pairs = items.map((item) =>
            [decoder.decode(item.key), decoder.decode(item.value)] as const
          );
          if (flags.json) {
            output.stdout(JSON.stringify(pairs.map(([key, value]) => ({ key, value }))) + "\n");
          } else {
            for (const [key, value] of pairs) output.stdout(`${key}\t${value}\n`);
          }
          return 0;
        },
      );
    case "-h":
    case "--help":
      output.stdout(HELP);
      return 0;
    case undefined:
      output.stderr(HELP);
      return 2;
    default:
      throw new UsageError(`unknown kv command '${subcommand}'; see 'blixard kv --help'`);
  }
}

function positionals(flags: ClientFlags, count: number, usage: string): string[] {
  if (flags.positionals.length !== count) {
    throw new UsageError(
      `expected ${
        count === 1 ? "KEY" : "KEY and VALUE"
      }, got ${flags.positionals.length} argument(s); usage: ${usage}`,
    );
  }
  return flags.positionals;
}
