/**
 * `NodeConfig`: the validated configuration of `blixard node`, from its flags and the
 * `BLIXARD_*` environment variables (DESIGN.md sections 3 and 4a).
 *
 * Every value is checked here, once, so that the rest of the node can trust it. A bad
 * value throws `UsageError` (exit code 2) with one line naming the flag or variable, the
 * value and the rule, e.g.
 * `--bind 127.0.0.1:70000: port must be 1–64535 so that the HTTP port (port+1000) is valid`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  CLUSTER_SECRET_VARIABLE,
  type ClusterSecretSource,
  SecretText,
} from "../auth/cluster_secret.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../log/logging.ts";
import {
  formatSocketAddress,
  isUnspecifiedAddress,
  parseSocketAddress,
} from "../transport/socket_address.ts";
import { isDnsName, parseDnsServer } from "../bootstrap/peer_source.ts";
import { HelpRequested, UsageError } from "../util/errors.ts";
import { NODE_USAGE } from "./usage.ts";
import type { DiscoveryConfig, DnsServer, NodeConfig } from "../config/node_config.ts";
import {
  decodeInviteTicket,
  type InviteTicket,
  InviteTicketError,
} from "../bootstrap/invite_ticket.ts";
import { VOTERS_MAX_DEFAULT, VOTERS_MAX_LIMIT } from "../node/membership/autopilot.ts";

/** Default `--discovery-wait`. */
export const DEFAULT_DISCOVERY_WAIT_MS = 1_000;
/** Longest `--discovery-wait`. */
export const DISCOVERY_WAIT_MS_MAX = 10 * 60_000;
/** Largest `--bootstrap-expect`: a Raft cluster of more voters is slow, not safer. */
export const BOOTSTRAP_EXPECT_MAX = 64;
const CLUSTER_ID_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The HTTP server listens on the bind port plus this (DESIGN.md section 3). */
export const HTTP_PORT_OFFSET = 1000;
/** Highest bind port: the HTTP port above it must still be a valid TCP port. */
export const BIND_PORT_MAX = 65535 - HTTP_PORT_OFFSET;
/** Without `--bind`, node N binds `127.0.0.1:(DEFAULT_BIND_PORT_BASE + N)`. */
export const DEFAULT_BIND_PORT_BASE = 7000;
/** The default bind host: loopback, so that nothing is exposed unless asked for. */
export const DEFAULT_BIND_HOST = "127.0.0.1";
/** Default `--join-timeout`. */
export const DEFAULT_JOIN_TIMEOUT_MS = 30_000;
/** Longest `--join-timeout`: beyond a day, a node that cannot join should say so. */
export const JOIN_TIMEOUT_MS_MAX = 24 * 60 * 60 * 1000;
/** Most `--peers` entries: each is tried in parallel during a join. */
export const PEERS_MAX = 64;
/** Longest single `--peers` entry or URL. */
export const ADDRESS_CHARS_MAX = 2048;
/** Longest path accepted for `--data-dir` and `--cluster-secret-file`. */
export const PATH_CHARS_MAX = 4096;
/** Most `--advertise` addresses: as many as a `/bootstrap` answer and a member record carry. */
export const ADVERTISE_ADDRESSES_MAX = 16;
/** Longest value quoted in an error message, so that the message stays one short line. */
const QUOTED_VALUE_CHARS_MAX = 100;

/** The flags of `blixard node`; `help` comes on top of these. */
export const NODE_FLAGS = [
  "id",
  "bind",
  "data-dir",
  "peers",
  "relay-url",
  "join-timeout",
  "log-level",
  "log-format",
  "mdns",
  "cluster-secret-file",
  "advertise",
  "http-bind",
  "dns-server",
  "mdns-interface",
  "bootstrap-expect",
  "discovery-wait",
  "cluster-id",
  "max-voters",
] as const;
/** A flag of `blixard node`. */
export type NodeFlag = typeof NODE_FLAGS[number];

/** The variable that stands in for `--<flag>`: `data-dir` → `BLIXARD_DATA_DIR`. */
export function environmentVariableFor(flag: NodeFlag): string {
  return `BLIXARD_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/** The original variable for mDNS, same meaning as `BLIXARD_MDNS` (which wins over it). */
export const LEGACY_MDNS_VARIABLE = "BLIXARD_ENABLE_MDNS_DISCOVERY";
/** The original switch for P2P: only `true` (or unset) is accepted now. */
export const P2P_ENABLED_VARIABLE = "BLIXARD_P2P_ENABLED";

const PARSE_OPTIONS = {
  id: { type: "string" },
  bind: { type: "string" },
  "data-dir": { type: "string" },
  peers: { type: "string" },
  "relay-url": { type: "string" },
  "join-timeout": { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  mdns: { type: "boolean" },
  "cluster-secret-file": { type: "string" },
  advertise: { type: "string", multiple: true },
  "http-bind": { type: "string" },
  "dns-server": { type: "string" },
  restore: { type: "string" },
  "force-new-cluster": { type: "boolean" },
  "mdns-interface": { type: "string" },
  "bootstrap-expect": { type: "string" },
  "discovery-wait": { type: "string" },
  "cluster-id": { type: "string" },
  join: { type: "string" },
  "max-voters": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** The variable of `--join`: named for what it holds, a ticket. */
export const JOIN_TICKET_VARIABLE = "BLIXARD_JOIN_TICKET";

/** A raw value and where it came from, so that an error can name both. */
export interface Setting {
  readonly value: string;
  /** `--bind` or `BLIXARD_BIND`. */
  readonly origin: string;
}

type Environment = Record<string, string | undefined>;

/**
 * Parses the arguments after `node` and the environment into a `NodeConfig`. Flags win
 * over their `BLIXARD_*` variables; an empty variable counts as unset.
 *
 * @throws {HelpRequested} when `--help` or `-h` is among `args`, whatever else is there.
 * @throws {UsageError} for an unknown flag or any invalid value.
 */
export function parseNodeConfig(args: readonly string[], environment: Environment): NodeConfig {
  if (args.includes("--help") || args.includes("-h")) throw new HelpRequested(NODE_USAGE);
  const flags = parseFlags(args);
  const lookup = (flag: NodeFlag): Setting | null => {
    const flagValue = flags[flag];
    if (typeof flagValue === "string") return { value: flagValue, origin: `--${flag}` };
    const variable = environmentVariableFor(flag);
    const value = environment[variable];
    return value === undefined || value === "" ? null : { value, origin: variable };
  };
  checkP2pEnabled(environment);
  const nodeId = parseNodeId(lookup("id"));
  const bind = parseBind(lookup("bind"), nodeId);
  const http = parseHttpBind(lookup("http-bind")) ??
    { host: bind.host, port: bind.port + HTTP_PORT_OFFSET };
  const config: NodeConfig = {
    nodeId,
    bindHost: bind.host,
    bindPort: bind.port,
    httpPort: http.port,
    httpHost: http.host,
    advertiseAddresses: Object.freeze(parseAdvertise(lookup("advertise"))),
    dataDir: parsePath(lookup("data-dir")) ?? `./data${nodeId}`,
    peers: Object.freeze(parsePeers(lookup("peers"))),
    relayUrl: parseRelayUrl(lookup("relay-url")),
    joinTimeoutMs: parseJoinTimeout(lookup("join-timeout")),
    logLevel: parseChoice(lookup("log-level"), LOG_LEVELS) ?? "info",
    logFormat: parseChoice(lookup("log-format"), LOG_FORMATS) ?? "text",
    mdnsEnabled: parseMdns(flags.mdns, environment),
    discovery: parseDiscovery(lookup),
    clusterSecret: parseClusterSecretSource(flags["cluster-secret-file"], environment),
    dnsServer: parseDnsServerSetting(lookup("dns-server")),
    joinTicket: parseJoinTicket(flags.join, environment),
    votersMax: parseVotersMax(lookup("max-voters")),
    ...parseRecovery(flags),
  };
  checkDiscovery(config, lookup);
  assertConfig(config);
  return Object.freeze(config);
}

function assertConfig(config: NodeConfig): void {
  const valid = Number.isSafeInteger(config.nodeId) && config.nodeId >= 1 &&
    config.bindPort >= 1 && config.bindPort <= BIND_PORT_MAX &&
    config.httpPort >= 1 && config.httpPort <= 65535 &&
    config.joinTimeoutMs > 0 && config.peers.length <= PEERS_MAX &&
    config.advertiseAddresses.length <= ADVERTISE_ADDRESSES_MAX;
  if (!valid) throw new Error(`NodeConfig invariant violated: ${JSON.stringify(config)}`);
}

type ParsedFlags = Partial<
  Record<NodeFlag | "restore" | "force-new-cluster" | "join", string | boolean>
>;

/**
 * `--join TICKET`, else `BLIXARD_JOIN_TICKET`: decoded now, so that a ticket cut or
 * mistyped in copying is a usage error (exit 2) naming what is wrong, before anything
 * starts.
 */
function parseJoinTicket(
  flag: string | boolean | undefined,
  environment: Environment,
): InviteTicket | null {
  const setting: Setting | null = typeof flag === "string"
    ? { value: flag, origin: "--join" }
    : environment[JOIN_TICKET_VARIABLE]
    ? { value: environment[JOIN_TICKET_VARIABLE]!, origin: JOIN_TICKET_VARIABLE }
    : null;
  if (setting === null) return null;
  try {
    return decodeInviteTicket(setting.value);
  } catch (error) {
    if (!(error instanceof InviteTicketError)) throw error;
    throw new UsageError(
      `${setting.origin}: not a valid invite ticket: ${error.message} ` +
        "(blixard cluster invite prints one)",
    );
  }
}

/**
 * `--restore FILE` and `--force-new-cluster`: each founds a cluster of this node alone, so
 * neither goes with the other, nor with `--peers` (which would be ignored).
 */
function parseRecovery(
  flags: ParsedFlags,
): { restoreFile: string | null; forceNewCluster: boolean } {
  const restore = flags.restore;
  const restoreFile = typeof restore === "string"
    ? parsePath({ value: restore, origin: "--restore" })
    : null;
  if (restoreFile === "") fail({ value: "", origin: "--restore" }, "needs a backup file");
  const forceNewCluster = flags["force-new-cluster"] === true;
  if (restoreFile !== null && forceNewCluster) {
    throw new UsageError(
      "--restore and --force-new-cluster: give one; --restore founds a new cluster from a " +
        "backup, --force-new-cluster recovers a surviving member's data dir",
    );
  }
  const which = restoreFile !== null ? "--restore" : forceNewCluster ? "--force-new-cluster" : null;
  if (which !== null && typeof flags.peers === "string" && flags.peers.trim() !== "") {
    throw new UsageError(
      `${which} and --peers: ${which} makes this node a cluster of its own; drop --peers, ` +
        `and let other nodes join it with --peers`,
    );
  }
  return { restoreFile, forceNewCluster };
}

/** Flags that may be given more than once; their values add up. */
const REPEATABLE_FLAGS: ReadonlySet<string> = new Set(
  Object.entries(PARSE_OPTIONS).filter(([, option]) => "multiple" in option).map(([name]) => name),
);

function parseFlags(args: readonly string[]): ParsedFlags {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: PARSE_OPTIONS,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
      tokens: true,
    });
  } catch (error) {
    throw new UsageError(describeParseError(error));
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== "option" || REPEATABLE_FLAGS.has(token.name)) continue;
    if (seen.has(token.name)) {
      throw new UsageError(`--${token.name}: given more than once; give it once`);
    }
    seen.add(token.name);
  }
  // A repeatable flag given several times reads as one comma-separated list.
  return Object.fromEntries(
    Object.entries(parsed.values).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.join(",") : value,
    ]),
  );
}

/** Turns `node:util` parseArgs errors into one line that names the flag. */
function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const name = /'(-[^' ]*)/.exec(message)?.[1] ?? "";
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return `${quote(name)}: unknown flag; see 'blixard node --help'`;
  }
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    const argument = /'([^']*)'/.exec(message)?.[1] ?? "";
    return `${quote(argument)}: unexpected argument; blixard node takes only flags`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (message.includes("does not take an argument")) return `${name}: takes no value`;
    if (message.includes("ambiguous")) {
      return `${name}: needs a value; for a value that starts with '-', write ${name}=VALUE`;
    }
    return `${name}: needs a value`;
  }
  return quote(message.split("\n")[0] ?? "invalid arguments");
}

function fail(setting: Setting, rule: string): never {
  const separator = setting.origin.startsWith("--") ? " " : "=";
  throw new UsageError(`${setting.origin}${separator}${quote(setting.value)}: ${rule}`);
}

/** Shows a value as typed, in JSON quotes when it is empty or has spaces or control characters. */
function quote(value: string): string {
  const shown = value.length > QUOTED_VALUE_CHARS_MAX
    ? `${value.slice(0, QUOTED_VALUE_CHARS_MAX)}…`
    : value;
  return shown === "" || /[\s"\p{Cc}]/u.test(shown) ? JSON.stringify(shown) : shown;
}

function checkP2pEnabled(environment: Environment): void {
  const value = environment[P2P_ENABLED_VARIABLE];
  if (value === undefined || value === "") return;
  const setting = { value, origin: P2P_ENABLED_VARIABLE };
  if (!parseBoolean(setting)) {
    fail(setting, `Iroh P2P is the only transport; unset ${P2P_ENABLED_VARIABLE}`);
  }
}

function parseNodeId(setting: Setting | null): number {
  if (setting === null) {
    throw new UsageError(
      `--id is required (or ${environmentVariableFor("id")}): the cluster node id, an integer ≥ 1`,
    );
  }
  if (!/^[1-9][0-9]*$/.test(setting.value)) fail(setting, "must be an integer ≥ 1");
  const nodeId = Number(setting.value);
  if (!Number.isSafeInteger(nodeId)) {
    fail(setting, `must be at most ${Number.MAX_SAFE_INTEGER}`);
  }
  return nodeId;
}

function parseBind(setting: Setting | null, nodeId: number): { host: string; port: number } {
  if (setting === null) {
    const port = DEFAULT_BIND_PORT_BASE + nodeId;
    if (port > BIND_PORT_MAX) {
      throw new UsageError(
        `--id ${nodeId}: the default bind port ${DEFAULT_BIND_PORT_BASE}+id must be at most ` +
          `${BIND_PORT_MAX}; give --bind host:port`,
      );
    }
    return { host: DEFAULT_BIND_HOST, port };
  }
  return parseIpHostPort(setting, BIND_PORT_MAX);
}

/**
 * `ip:port` for a socket to bind: a name is refused, because it could stand for several
 * addresses and peers must be told one they can dial.
 */
function parseIpHostPort(setting: Setting, portMax: number): { host: string; port: number } {
  const parsed = parseHostPort(setting.value, { portMax });
  if (typeof parsed === "string") return fail(setting, parsed);
  if (!/^[0-9.]+$/.test(parsed.host) && !isIpv6(parsed.host)) {
    return fail(
      setting,
      "the host must be an IP address, e.g. 127.0.0.1:7001, 0.0.0.0:7001 or [::1]:7001",
    );
  }
  return parsed;
}

/** `--http-bind`: where the HTTP server listens instead of bind host, port + 1000. */
function parseHttpBind(setting: Setting | null): { host: string; port: number } | null {
  return setting === null ? null : parseIpHostPort(setting, 65535);
}

/**
 * `--advertise`: comma-separated `ip:port` addresses that peers can dial. Names are not
 * resolved (the member record holds socket addresses), and the unspecified address names
 * no host a peer could reach.
 */
function parseAdvertise(setting: Setting | null): string[] {
  if (setting === null || setting.value.trim() === "") return [];
  const entries = setting.value.split(",").map((entry) => entry.trim());
  if (entries.length > ADVERTISE_ADDRESSES_MAX) {
    fail(setting, `at most ${ADVERTISE_ADDRESSES_MAX} addresses`);
  }
  const addresses = entries.map((entry) => {
    const parsed = parseHostPort(entry, { portMax: 65535 });
    if (typeof parsed === "string") return fail(setting, `address ${quote(entry)}: ${parsed}`);
    const address = parseSocketAddress(entry);
    if (address === null) {
      return fail(
        setting,
        `address ${quote(entry)}: the host must be an IP address; names are not resolved`,
      );
    }
    if (isUnspecifiedAddress(address)) {
      return fail(
        setting,
        `address ${quote(entry)}: names no host; advertise an address peers can dial`,
      );
    }
    return formatSocketAddress(address);
  });
  return [...new Set(addresses)];
}

/**
 * Splits `host:port`, `[v6]:port` or `name:port` and checks both halves. Returns the
 * parts (IPv6 without brackets) or the rule that the text breaks. The port must be at most
 * `options.portMax`: by default `BIND_PORT_MAX`, so that port + 1000 is a valid HTTP port.
 */
export function parseHostPort(
  text: string,
  options: { portMax?: number } = {},
): { host: string; port: number } | string {
  const portMax = options.portMax ?? BIND_PORT_MAX;
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]:");
    if (close < 0) return "an IPv6 address must be written [address]:port, e.g. [::1]:7001";
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIpv6(host)) return `${quote(host)} is not a valid IPv6 address`;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return "must be host:port, e.g. 127.0.0.1:7001 or [::1]:7001";
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) return "an IPv6 address needs brackets, e.g. [::1]:7001";
    const hostRule = checkHost(host);
    if (hostRule !== null) return hostRule;
  }
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= portMax)) {
    return portMax === BIND_PORT_MAX
      ? `port must be 1–${BIND_PORT_MAX} so that the HTTP port (port+${HTTP_PORT_OFFSET}) is valid`
      : `port must be 1–${portMax}`;
  }
  return { host, port };
}

const DNS_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Checks an IPv4 address or DNS name; returns the broken rule or `null`. */
function checkHost(host: string): string | null {
  if (host === "") return "the host is empty";
  if (/^[0-9.]+$/.test(host)) {
    const octets = host.split(".");
    const valid = octets.length === 4 &&
      octets.every((octet) => /^(0|[1-9][0-9]{0,2})$/.test(octet) && Number(octet) <= 255);
    return valid ? null : `${quote(host)} is not a valid IPv4 address`;
  }
  return checkDnsName(host);
}

function checkDnsName(name: string): string | null {
  const valid = name.length <= 253 && name.split(".").every((label) => DNS_LABEL.test(label));
  return valid ? null : notAHostName(name);
}

function notAHostName(name: string): string {
  return `${
    quote(name)
  } is not a valid host name (letters, digits, '-', '_' in dot-separated labels)`;
}

function isIpv6(host: string): boolean {
  if (!host.includes(":")) return false;
  try {
    new URL(`http://[${host}]/`);
    return true;
  } catch {
    return false;
  }
}

/** Checks an `http://` or `https://` URL; returns the broken rule or `null`. */
function checkHttpUrl(text: string): string | null {
  if (text.length > ADDRESS_CHARS_MAX) return `must be at most ${ADDRESS_CHARS_MAX} characters`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "is not a valid URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return "must be an http:// or https:// URL";
  }
  if (url.username !== "" || url.password !== "") {
    return "must not hold credentials: they would be logged";
  }
  return null;
}

function parsePeers(setting: Setting | null): string[] {
  // An empty value means no peers, so that scripts can pass `--peers "$PEERS"` unchanged.
  if (setting === null || setting.value.trim() === "") return [];
  const peers = setting.value.split(",").map((entry) => entry.trim());
  if (peers.length > PEERS_MAX) fail(setting, `at most ${PEERS_MAX} peers`);
  for (const peer of peers) {
    const rule = checkPeer(peer);
    if (rule !== null) fail(setting, `peer ${quote(peer)}: ${rule}`);
  }
  return peers;
}

function checkPeer(peer: string): string | null {
  if (peer === "") return "is empty; separate peers with single commas";
  if (peer.length > ADDRESS_CHARS_MAX) return `must be at most ${ADDRESS_CHARS_MAX} characters`;
  if (peer.includes("://")) return checkHttpUrl(peer);
  // The same rule as the joiner's (a final dot is allowed: `dns:seeds.example.com.`).
  if (peer.startsWith("dns:")) {
    const name = peer.slice("dns:".length);
    return isDnsName(name) ? null : notAHostName(name);
  }
  const parsed = parseHostPort(peer);
  return typeof parsed === "string" ? parsed : null;
}

/** The variable `name` of `environment` as a setting, or `null` when unset or empty. */
export function settingOf(environment: Environment, name: string): Setting | null {
  const value = environment[name];
  return value === undefined || value === "" ? null : { value, origin: name };
}

/** `--dns-server ip[:port]` (port 53 by default), or `null` when not given. */
export function parseDnsServerSetting(setting: Setting | null): DnsServer | null {
  if (setting === null) return null;
  const parsed = parseDnsServer(setting.value);
  return "rule" in parsed ? fail(setting, parsed.rule) : parsed;
}

function parseRelayUrl(setting: Setting | null): string | null {
  if (setting === null) return null;
  const rule = checkHttpUrl(setting.value);
  return rule === null ? setting.value : fail(setting, rule);
}

const DURATION_UNIT_MS = new Map([["ms", 1], ["s", 1000], ["m", 60_000], ["h", 3_600_000]]);

/** A duration such as `500ms`, `30s`, `2m` or `1h` in milliseconds, or `null` when malformed. */
export function parseDuration(text: string): number | null {
  const match = /^([0-9]{1,9})(ms|s|m|h)$/.exec(text);
  const unitMs = DURATION_UNIT_MS.get(match?.[2] ?? "");
  return unitMs === undefined ? null : Number(match?.[1]) * unitMs;
}

function parseJoinTimeout(setting: Setting | null): number {
  if (setting === null) return DEFAULT_JOIN_TIMEOUT_MS;
  const durationMs = parseDuration(setting.value);
  if (durationMs === null) {
    fail(setting, "must be a whole number with a unit: ms, s, m or h (e.g. 500ms, 30s, 2m)");
  }
  if (durationMs <= 0) fail(setting, "must be greater than zero");
  if (durationMs > JOIN_TIMEOUT_MS_MAX) fail(setting, "must be at most 24h");
  return durationMs;
}

/**
 * `--max-voters N`: odd, since an even number of voters tolerates no more failures than one
 * fewer and needs one more acknowledgement per write.
 */
function parseVotersMax(setting: Setting | null): number {
  if (setting === null) return VOTERS_MAX_DEFAULT;
  const votersMax = /^[1-9][0-9]?$/.test(setting.value) ? Number(setting.value) : Number.NaN;
  if (!(votersMax <= VOTERS_MAX_LIMIT && votersMax % 2 === 1)) {
    fail(
      setting,
      `must be an odd number from 1 to ${VOTERS_MAX_LIMIT} (e.g. 3, 5, 7): an even number ` +
        "of voters tolerates no more failures than one fewer",
    );
  }
  return votersMax;
}

function parseChoice<T extends string>(setting: Setting | null, choices: readonly T[]): T | null {
  if (setting === null) return null;
  const choice = choices.find((candidate) => candidate === setting.value);
  return choice ?? fail(setting, `must be one of ${choices.join(", ")}`);
}

function parsePath(setting: Setting | null): string | null {
  if (setting === null) return null;
  if (setting.value.includes("\0")) fail(setting, "must not contain a NUL character");
  if (setting.value.length > PATH_CHARS_MAX) {
    fail(setting, `must be at most ${PATH_CHARS_MAX} characters`);
  }
  return setting.value;
}

/**
 * Where the cluster secret comes from: `--cluster-secret-file` (`flagPath`), else
 * `BLIXARD_CLUSTER_SECRET_FILE` or `BLIXARD_CLUSTER_SECRET` (both set is a usage error:
 * which one the operator meant is unclear); `null` for none. The operator commands share it.
 */
export function parseClusterSecretSource(
  flagPath: string | boolean | undefined,
  environment: Environment,
): ClusterSecretSource | null {
  const flag = "--cluster-secret-file";
  if (typeof flagPath === "string") {
    return { kind: "file", path: parsePath({ value: flagPath, origin: flag })!, origin: flag };
  }
  const fileVariable = environmentVariableFor("cluster-secret-file");
  const path = environment[fileVariable];
  const value = environment[CLUSTER_SECRET_VARIABLE];
  // Unlike other variables, set-but-empty is an error here: `"$(cat /missing)"` must not
  // start a node of a cluster with a secret without one.
  for (const [variable, text] of [[fileVariable, path], [CLUSTER_SECRET_VARIABLE, value]]) {
    if (text === "") {
      throw new UsageError(
        `${variable} is set but empty: set it to the cluster secret${
          variable === fileVariable ? "'s file" : ""
        }, or unset it for a cluster without a secret`,
      );
    }
  }
  const pathSet = path !== undefined;
  const valueSet = value !== undefined;
  if (pathSet && valueSet) {
    throw new UsageError(
      `${fileVariable} and ${CLUSTER_SECRET_VARIABLE} are both set: set only one of them`,
    );
  }
  if (pathSet) {
    return {
      kind: "file",
      path: parsePath({ value: path, origin: fileVariable })!,
      origin: fileVariable,
    };
  }
  if (valueSet) {
    return { kind: "value", text: new SecretText(value), origin: CLUSTER_SECRET_VARIABLE };
  }
  return null;
}

function parseMdns(flag: string | boolean | undefined, environment: Environment): boolean {
  if (typeof flag === "boolean") return flag;
  for (const variable of [environmentVariableFor("mdns"), LEGACY_MDNS_VARIABLE]) {
    const value = environment[variable];
    if (value !== undefined && value !== "") return parseBoolean({ value, origin: variable });
  }
  return false;
}

const BOOLEAN_WORDS = new Map([
  ["true", true],
  ["false", false],
  ["1", true],
  ["0", false],
  ["yes", true],
  ["no", false],
]);

function parseBoolean(setting: Setting): boolean {
  const value = BOOLEAN_WORDS.get(setting.value.toLowerCase());
  return value ?? fail(setting, "must be one of true, false, 1, 0, yes, no");
}

function parseDiscovery(lookup: (flag: NodeFlag) => Setting | null): DiscoveryConfig {
  const interfaceSetting = lookup("mdns-interface");
  if (interfaceSetting !== null && !/^[A-Za-z0-9._:@-]{1,64}$/.test(interfaceSetting.value)) {
    fail(interfaceSetting, "must be an interface name (e.g. eth0) or its IPv4 address");
  }
  const expect = lookup("bootstrap-expect");
  if (expect !== null && !/^[1-9][0-9]{0,2}$/.test(expect.value)) {
    fail(expect, `must be an integer from 1 to ${BOOTSTRAP_EXPECT_MAX}`);
  }
  if (expect !== null && Number(expect.value) > BOOTSTRAP_EXPECT_MAX) {
    fail(expect, `must be an integer from 1 to ${BOOTSTRAP_EXPECT_MAX}`);
  }
  const wait = lookup("discovery-wait");
  const waitMs = wait === null ? DEFAULT_DISCOVERY_WAIT_MS : parseDuration(wait.value);
  if (wait !== null && (waitMs === null || waitMs > DISCOVERY_WAIT_MS_MAX)) {
    fail(wait, "must be a whole number with a unit, at most 10m (e.g. 0ms, 500ms, 2s)");
  }
  const clusterId = lookup("cluster-id");
  if (clusterId !== null && !CLUSTER_ID_RULE.test(clusterId.value)) {
    fail(
      clusterId,
      "must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit",
    );
  }
  return {
    interface: interfaceSetting?.value ?? null,
    bootstrapExpect: expect === null ? null : Number(expect.value),
    discoveryWaitMs: waitMs ?? DEFAULT_DISCOVERY_WAIT_MS,
    clusterId: clusterId?.value ?? null,
  };
}

/** The mDNS settings that mean nothing without mDNS, or with `--peers`, are refused. */
function checkDiscovery(config: NodeConfig, lookup: (flag: NodeFlag) => Setting | null): void {
  const mdnsOnly: NodeFlag[] = ["mdns-interface", "bootstrap-expect", "discovery-wait"];
  for (const flag of mdnsOnly) {
    const setting = lookup(flag);
    if (setting !== null && !config.mdnsEnabled) {
      fail(setting, "applies to mDNS discovery only; add --mdns (or BLIXARD_MDNS=true)");
    }
  }
  const expect = lookup("bootstrap-expect");
  if (expect !== null && config.peers.length > 0) {
    fail(expect, "forms a new cluster from mDNS candidates; give it or --peers, not both");
  }
}
