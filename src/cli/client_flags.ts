/**
 * What the operator commands (`cluster …`, `kv …`) share: the flags `--peer host:port`
 * (also `BLIXARD_PEER`), `--timeout`, `--json`, `--id`, `--force`, `--dns-server` (also
 * `BLIXARD_DNS_SERVER`), `--no-cache`, parsed with `node:util` `parseArgs`, and the cluster
 * secret (`--cluster-secret-file`, `BLIXARD_CLUSTER_SECRET_FILE`
 * or `BLIXARD_CLUSTER_SECRET`, as for a node); connecting a client; and turning its
 * failures into one line and exit 1.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { reasonOf, UsageError } from "../util/errors.ts";
import type { DnsServer } from "../config/node_config.ts";
import {
  parseClusterSecretSource,
  parseDnsServerSetting,
  parseDuration,
  settingOf,
} from "./node_config.ts";
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
import { defaultPeerCachePath, PeerCache } from "../bootstrap/peer_cache.ts";
import { txtResolverFor } from "../bootstrap/peer_source.ts";
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
  /** `--name` (`cluster dns-records`), or `null`. */
  name: string | null;
  /** `--chunk-bytes` as given (only `cluster backup` allows it), or `null`. */
  chunkBytes: string | null;
  /** `--ttl`, `--uses` and `--as` as given (only `cluster invite` allows them), or `null`. */
  ttl: string | null;
  uses: string | null;
  as: string | null;
  /** Where the cluster secret comes from, or `null` for none. */
  clusterSecret: ClusterSecretSource | null;
  /** `--dns-server ip:port` for `dns:NAME` peers, or `null` for the system's resolver. */
  dnsServer: DnsServer | null;
  /** `--no-cache`: neither read nor write the peer cache. */
  noCache: boolean;
  positionals: string[];
}

/** What the help of every operator command says about finding the node (the common flags). */
export const FINDING_THE_NODE_HELP =
  `--peer may also be dns:NAME: TXT records naming members or carrying their identity
(--dns-server ip[:port] or BLIXARD_DNS_SERVER picks the resolver). Identities verified once
are kept in $XDG_CACHE_HOME/blixard/peers.json (default ~/.cache/blixard/), so the next
command skips the /bootstrap fetch; --no-cache bypasses the cache.`;

/** How long an operator command keeps trying to reach `--peer` without `--timeout`. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 3_000;

const OPTIONS = {
  peer: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
  force: { type: "boolean" },
  id: { type: "string" },
  name: { type: "string" },
  "chunk-bytes": { type: "string" },
  ttl: { type: "string" },
  uses: { type: "string" },
  as: { type: "string" },
  "cluster-secret-file": { type: "string" },
  "dns-server": { type: "string" },
  "no-cache": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsConfig["options"];

/**
 * Flags every command takes: each one talks to a node (found through `--peer`, perhaps
 * `dns:NAME` or the peer cache), and a node of a cluster with a secret answers only
 * callers that prove it.
 */
const COMMON_FLAGS = ["help", "cluster-secret-file", "dns-server", "no-cache"] as const;

/** A flag name of the operator commands that each command allows or not. */
export type ClientFlagName = Exclude<keyof typeof OPTIONS, typeof COMMON_FLAGS[number]>;

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
 * What an operator command does once connected, given its flags and the loaded cluster
 * secret (or `null`); resolves to the exit code.
 */
export type ClientAction = (
  client: BlixardClient,
  flags: ClientFlags,
  clusterSecret: ClusterSecret | null,
) => Promise<number>;

/** The subcommands of one group (`blixard cluster …`, `blixard kv …`). */
export interface SubcommandTable<Name extends string> {
  /** The group's help: on stdout for `-h`, on stderr (exit 2) without a subcommand. */
  help: string;
  /** The subcommands that reach a node: their flags… */
  specs: Record<Name, ClientCommandSpec>;
  /** …and what each does once connected. */
  actions: Record<Name, ClientAction>;
  /** Subcommands that reach no node (`cluster new-secret`): given the arguments after them. */
  local?: Record<string, (args: readonly string[]) => Promise<number>>;
}

/**
 * Runs `blixard GROUP SUBCOMMAND …` from `table`. An unknown subcommand is a `UsageError`
 * that names it and points at the group's help.
 */
export async function runSubcommand<Name extends string>(
  group: string,
  args: readonly string[],
  context: { env: Environment; output: CliOutput },
  table: SubcommandTable<Name>,
): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === "-h" || subcommand === "--help") {
    context.output.stdout(table.help);
    return 0;
  }
  if (subcommand === undefined) {
    context.output.stderr(table.help);
    return 2;
  }
  const local = table.local !== undefined && Object.hasOwn(table.local, subcommand)
    ? table.local[subcommand]
    : undefined;
  if (local !== undefined) return await local(rest);
  if (!Object.hasOwn(table.specs, subcommand)) {
    throw new UsageError(`unknown ${group} command '${subcommand}'; see 'blixard ${group} --help'`);
  }
  const name = subcommand as Name;
  return await runClientCommand(rest, { ...context, spec: table.specs[name] }, table.actions[name]);
}

/**
 * Parses `args`, connects to `--peer`, runs `action` and closes the client. Failures to
 * reach the node or of the operation print one line and give exit code 1; bad flags throw
 * `UsageError` (exit 2).
 */
export async function runClientCommand(
  args: readonly string[],
  context: { env: Environment; output: CliOutput; spec: ClientCommandSpec },
  action: ClientAction,
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
    const cachePath = flags.noCache ? null : defaultPeerCachePath(context.env);
    client = await BlixardClient.connect(flags.peer, {
      timeoutMs: flags.connectTimeoutMs,
      clusterSecret,
      peerCache: cachePath === null ? null : await PeerCache.open(cachePath),
      resolveTxt: txtResolverFor(flags.dnsServer),
    });
  } catch (error) {
    if (error instanceof EmptyClusterSecretError) throw new UsageError(error.message);
    context.output.stderr(`blixard: ${describeConnectFailure(error, flags.peer)}\n`);
    return 1;
  }
  try {
    return await action(client, flags, clusterSecret);
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
    const common = (COMMON_FLAGS as readonly string[]).includes(name);
    if (!common && !options.allowed.includes(name as ClientFlagName)) {
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
    name: values.name ?? null,
    chunkBytes: values["chunk-bytes"] ?? null,
    ttl: values.ttl ?? null,
    uses: values.uses ?? null,
    as: values.as ?? null,
    clusterSecret: parseClusterSecretSource(values["cluster-secret-file"], options.env),
    dnsServer: parseDnsServerSetting(
      values["dns-server"] === undefined
        ? settingOf(options.env, "BLIXARD_DNS_SERVER")
        : { value: values["dns-server"], origin: "--dns-server" },
    ),
    noCache: values["no-cache"] ?? false,
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
