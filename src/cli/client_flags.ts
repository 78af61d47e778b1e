/**
 * What the operator commands (`cluster …`, `kv …`) share: the flags `--peer host:port`
 * (also `BLIXARD_PEER`), `--timeout`, `--json`, `--id`, `--force`, parsed with `node:util`
 * `parseArgs`, and the cluster secret (`--cluster-secret-file`, `BLIXARD_CLUSTER_SECRET_FILE`
 * or `BLIXARD_CLUSTER_SECRET`, as for a node); connecting a client; and turning its
 * failures into one line and exit 1.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { reasonOf, UsageError } from "./errors.ts";
import { parseClusterSecretSource, parseDuration } from "./node_config.ts";
import type { CliOutput, Environment } from "./cli.ts";
import { SECRET_REFUSED, SERVER_UNPROVEN, UNAUTHENTICATED } from "../auth/auth_rpcs.ts";
import {
  type ClusterSecret,
  ClusterSecretError,
  type ClusterSecretSource,
  EmptyClusterSecretError,
  loadClusterSecret,
} from "../auth/cluster_secret.ts";
import { SeedNotFoundError } from "../bootstrap/bootstrap_error.ts";
import { BlixardClient, ClientError, OPERATION_TIMEOUT_MS_DEFAULT } from "../client/client.ts";
import { DEADLINE_MS_MAX } from "../transport/deadline.ts";

/** What every operator command knows after parsing. */
export interface ClientFlags {
  peer: string;
  timeoutMs: number;
  /** How long to keep trying to reach `--peer`: `--timeout` when given, else a few seconds. */
  connectTimeoutMs: number;
  json: boolean;
  force: boolean;
  id: number | null;
  /** Where the cluster secret comes from, or `null` for none. */
  clusterSecret: ClusterSecretSource | null;
  positionals: string[];
}

/** How long an operator command keeps trying to reach `--peer` without `--timeout`. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 3_000;

const OPTIONS = {
  peer: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
  force: { type: "boolean" },
  id: { type: "string" },
  "cluster-secret-file": { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

/**
 * Flags every command takes: each one talks to a node, and a node of a cluster with a
 * secret answers only callers that prove it.
 */
const COMMON_FLAGS: readonly (keyof typeof OPTIONS)[] = ["help", "cluster-secret-file"];

/** A flag name of the operator commands that each command allows or not. */
export type ClientFlagName = Exclude<keyof typeof OPTIONS, "help" | "cluster-secret-file">;

/** One operator command: its usage line, its flags, and its help text. */
export interface ClientCommandSpec {
  usage: string;
  allowed: ClientFlagName[];
  help: string;
  /**
   * Checks the parsed arguments and throws `UsageError` for a wrong command line. It runs
   * before connecting, so a mistyped command fails at once with exit 2, even when the peer
   * is down, and nothing invalid is ever sent.
   */
  check?: (flags: ClientFlags) => void;
}

/**
 * Parses `args`, connects to `--peer`, runs `action` and closes the client. `action`
 * resolves to the exit code. Failures to reach the node or of the operation print one
 * line and give exit code 1; bad flags throw `UsageError` (exit 2).
 */
export async function runClientCommand(
  args: readonly string[],
  context: { env: Environment; output: CliOutput; spec: ClientCommandSpec },
  action: (client: BlixardClient, flags: ClientFlags) => Promise<number>,
): Promise<number> {
  const flags = parseClientFlags(args, { env: context.env, ...context.spec });
  if (flags === "help") {
    context.output.stdout(context.spec.help);
    return 0;
  }
  context.spec.check?.(flags);
  let clusterSecret: ClusterSecret | null = null;
  let client: BlixardClient;
  try {
    if (flags.clusterSecret !== null) clusterSecret = await loadClusterSecret(flags.clusterSecret);
    client = await BlixardClient.connect(flags.peer, {
      timeoutMs: flags.connectTimeoutMs,
      clusterSecret,
    });
  } catch (error) {
    if (error instanceof EmptyClusterSecretError) throw new UsageError(error.message);
    context.output.stderr(`blixard: ${describeConnectFailure(error, flags.peer)}\n`);
    return 1;
  }
  try {
    return await action(client, flags);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    context.output.stderr(`blixard: ${reasonOf(error)}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

/** Parses `args` (after the subcommand); `usage` names the command in error messages. */
export function parseClientFlags(
  args: readonly string[],
  options: { env: Environment; usage: string; allowed: ClientFlagName[] },
): ClientFlags | "help" {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split("\n")[0]}; usage: ${options.usage}`);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return "help";
  for (const name of Object.keys(values) as (keyof typeof OPTIONS)[]) {
    if (!COMMON_FLAGS.includes(name) && !options.allowed.includes(name as ClientFlagName)) {
      throw new UsageError(`--${name}: not a flag of this command; usage: ${options.usage}`);
    }
  }
  const peer = values.peer ?? options.env.BLIXARD_PEER;
  if (peer === undefined || peer === "") {
    throw new UsageError(
      `--peer is required (host:port of any member, or BLIXARD_PEER); usage: ${options.usage}`,
    );
  }
  const timeoutMs = values.timeout === undefined
    ? OPERATION_TIMEOUT_MS_DEFAULT
    : timeoutFlag(values.timeout);
  let id: number | null = null;
  if (values.id !== undefined) {
    id = /^[0-9]{1,15}$/.test(values.id) ? Number(values.id) : Number.NaN;
    if (!(id >= 1)) throw new UsageError(`--id ${values.id}: must be an integer ≥ 1`);
  }
  return {
    peer,
    timeoutMs,
    // A node that refuses connections is usually down: say so after a few seconds unless
    // the operator asked to wait longer.
    connectTimeoutMs: values.timeout === undefined ? CONNECT_TIMEOUT_MS_DEFAULT : timeoutMs,
    json: values.json ?? false,
    force: values.force ?? false,
    id,
    clusterSecret: parseClusterSecretSource(values["cluster-secret-file"], options.env),
    positionals,
  };
}

/**
 * One line on why connecting failed. A node that refused the caller was reached: saying
 * "cannot reach" would send the operator looking at the network instead of the secret.
 */
function describeConnectFailure(error: unknown, peer: string): string {
  if (error instanceof ClusterSecretError) return error.message;
  // The peer answered, with a /bootstrap this side's secret does not vouch for.
  const unsigned = error instanceof SeedNotFoundError && error.failures.length > 0 &&
    error.failures.every((failure) => failure.reason === "bad_signature");
  if (unsigned) return error.failures[0]!.message;
  const refused = error instanceof ClientError &&
    (error.code === UNAUTHENTICATED || error.code === SECRET_REFUSED);
  if (refused) return `${peer} refused this client: ${error.message}`;
  // Reached, but not trusted: saying "cannot reach" would hide that it may be an impostor.
  const unproven = error instanceof ClientError && error.code === SERVER_UNPROVEN;
  return unproven ? `${peer}: ${error.message}` : `cannot reach ${peer}: ${reasonOf(error)}`;
}

function timeoutFlag(text: string): number {
  const timeoutMs = parseDuration(text);
  // The transport refuses deadlines beyond a day as a bug; on the command line it is a typo.
  if (timeoutMs === null || timeoutMs <= 0 || timeoutMs > DEADLINE_MS_MAX) {
    throw new UsageError(
      `--timeout ${text}: must be a duration of at most 24h, such as 500ms, 10s or 1m`,
    );
  }
  return timeoutMs;
}
