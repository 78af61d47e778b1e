/**
 * `blixard kv put|get|delete|list`: the key/value API from the command line (DESIGN.md
 * section 4a). Writes go through the leader and print the commit index; reads are
 * linearizable from any member. Keys and values are taken as UTF-8 text. The arguments are
 * checked before connecting: an empty KEY, a KEY over 4096 bytes or a VALUE over 256 KiB
 * is a usage error (exit 2), like any other wrong command line.
 *
 * @module
 */

import type { CliOutput, Environment } from "./cli.ts";
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from "../transport/cluster_rpcs.ts";
import { type ClientCommandSpec, FINDING_THE_NODE_HELP, runSubcommand } from "./client_flags.ts";
import { UsageError } from "../util/errors.ts";

const VALUE_KIB_MAX = VALUE_BYTES_MAX / 1024;

const HELP = `Usage:
  blixard kv put KEY VALUE --peer host:port     Sets KEY; prints the commit index.
  blixard kv get KEY       --peer host:port     Prints the value (linearizable); exit 1 when absent.
  blixard kv delete KEY    --peer host:port     Removes KEY; prints the commit index.
  blixard kv list [PREFIX] --peer host:port     Prints KEY<TAB>VALUE lines in key order.

Flags: --timeout 10s (deadline, retries included), --json (list: one JSON array).
--peer is any member's host:port (its --bind address); BLIXARD_PEER works too.
${FINDING_THE_NODE_HELP}
--cluster-secret-file PATH: the cluster's secret, when it has one (also from
BLIXARD_CLUSTER_SECRET_FILE, or the secret itself in BLIXARD_CLUSTER_SECRET).
A KEY has 1 to ${KEY_BYTES_MAX} bytes and a VALUE at most ${VALUE_KIB_MAX} KiB (as UTF-8);
anything else is a usage error, refused before the command connects.
Exit codes: 0 success, 1 operation failed (or key absent), 2 usage error.
`;

const spec = (
  usage: string,
  allowed: ClientCommandSpec["allowed"],
  check: (positionals: readonly string[], usage: string) => void,
): ClientCommandSpec => ({
  usage,
  allowed,
  help: HELP,
  check: (flags) => check(flags.positionals, usage),
});
const SPECS = {
  put: spec("blixard kv put KEY VALUE --peer host:port", ["peer", "timeout"], checkKeyAndValue),
  get: spec("blixard kv get KEY --peer host:port", ["peer", "timeout"], checkKeyOnly),
  delete: spec("blixard kv delete KEY --peer host:port", ["peer", "timeout"], checkKeyOnly),
  list: spec(
    "blixard kv list [PREFIX] --peer host:port [--json]",
    ["peer", "timeout", "json"],
    checkPrefix,
  ),
};

const decoder = new TextDecoder();

/** Runs `blixard kv <subcommand> …`; resolves to the exit code. */
export function runKvCommand(
  args: readonly string[],
  context: { env: Environment; output: CliOutput },
): Promise<number> {
  const { output } = context;
  return runSubcommand("kv", args, context, {
    help: HELP,
    specs: SPECS,
    actions: {
      put: async (client, flags) => {
        const [key, value] = flags.positionals;
        const { index } = await client.put(key!, value!, { timeoutMs: flags.timeoutMs });
        output.stdout(`${index}\n`);
        return 0;
      },
      get: async (client, flags) => {
        const [key] = flags.positionals;
        const value = await client.get(key!, { timeoutMs: flags.timeoutMs });
        if (value === null) {
          output.stderr(`blixard: key ${JSON.stringify(key)} not found\n`);
          return 1;
        }
        output.stdout(`${decoder.decode(value)}\n`);
        return 0;
      },
      delete: async (client, flags) => {
        const [key] = flags.positionals;
        const { index, existed } = await client.delete(key!, { timeoutMs: flags.timeoutMs });
        output.stdout(`${index}\n`);
        if (!existed) output.stderr(`blixard: key ${JSON.stringify(key)} did not exist\n`);
        return 0;
      },
      list: async (client, flags) => {
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
    },
  });
}

const encoder = new TextEncoder();

function checkKeyAndValue(positionals: readonly string[], usage: string): void {
  checkCount(positionals, { count: 2, usage });
  checkKey(positionals[0]!, usage);
  const valueBytes = encoder.encode(positionals[1]!).length;
  if (valueBytes > VALUE_BYTES_MAX) {
    throw new UsageError(
      `VALUE has ${valueBytes} bytes; the limit is ${VALUE_BYTES_MAX} (${VALUE_KIB_MAX} KiB); usage: ${usage}`,
    );
  }
}

function checkKeyOnly(positionals: readonly string[], usage: string): void {
  checkCount(positionals, { count: 1, usage });
  checkKey(positionals[0]!, usage);
}

function checkPrefix(positionals: readonly string[], usage: string): void {
  if (positionals.length > 1) throw new UsageError(`too many arguments; usage: ${usage}`);
  const prefixBytes = encoder.encode(positionals[0] ?? "").length;
  if (prefixBytes > KEY_BYTES_MAX) {
    throw new UsageError(
      `PREFIX has ${prefixBytes} bytes; the limit is ${KEY_BYTES_MAX}; usage: ${usage}`,
    );
  }
}

function checkCount(positionals: readonly string[], options: { count: number; usage: string }) {
  if (positionals.length !== options.count) {
    throw new UsageError(
      `expected ${
        options.count === 1 ? "KEY" : "KEY and VALUE"
      }, got ${positionals.length} argument(s); usage: ${options.usage}`,
    );
  }
}

/** An empty or oversize key is a usage error: the command line alone shows it is wrong. */
function checkKey(key: string, usage: string): void {
  const keyBytes = encoder.encode(key).length;
  if (keyBytes === 0) {
    throw new UsageError(`KEY is empty: a key has 1 to ${KEY_BYTES_MAX} bytes; usage: ${usage}`);
  }
  if (keyBytes > KEY_BYTES_MAX) {
    throw new UsageError(
      `KEY has ${keyBytes} bytes; the limit is ${KEY_BYTES_MAX}; usage: ${usage}`,
    );
  }
}
