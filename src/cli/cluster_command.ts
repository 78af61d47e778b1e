/**
 * `blixard cluster status|leave|remove|dns-records|backup`: the operator's view of membership
 * (DESIGN.md section 4a), and backups of the replicated state. Each reaches the node through the same path a joiner takes: `/bootstrap`
 * over HTTP, then Iroh with the advertised key.
 *
 * @module
 */

import { formatDnsIdentity, quotedTxtStrings } from "../bootstrap/dns_identity.ts";
import { isDnsName, parsePeerEntry } from "../bootstrap/peer_source.ts";
import type { StatusJson } from "../transport/cluster_rpcs.ts";
import type { CliOutput, Environment } from "./cli.ts";
import { reasonOf, UsageError } from "../util/errors.ts";
import { parseArgs } from "node:util";
import {
  type ClusterSecret,
  EmptyClusterSecretError,
  loadClusterSecret,
  newSecretText,
} from "../auth/cluster_secret.ts";
import { openDataDir } from "../node/local_state/data_dir.ts";
import { rotateSecretFingerprint } from "../node/local_state/secret_fingerprint.ts";
import { parseClusterSecretSource, parseDuration } from "./node_config.ts";
import { INVITE_LIMITS, type InviteRole } from "../state_machine/invites.ts";
import type { z } from "../util/zod_mini.ts";
import type { inviteJsonSchema } from "../transport/invite_rpcs.ts";
import {
  type ClientCommandSpec,
  type ClientFlags,
  FINDING_THE_NODE_HELP,
  runSubcommand,
} from "./client_flags.ts";
import type { BlixardClient } from "../client/client.ts";
import { writeBackupFile } from "../backup/backup_file.ts";
import { IMAGE_CHUNK_BYTES_DEFAULT } from "../backup/backup_image.ts";
import { BACKUP_CHUNK_BYTES_MAX_REQUEST, BACKUP_CHUNK_BYTES_MIN } from "../backup/backup_rpcs.ts";

/** One invite as `cluster.invites` lists it. */
type InviteJson = z.infer<typeof inviteJsonSchema>;

const HELP = `Usage:
  blixard cluster status --peer host:port [--json] [--timeout 10s]
      The leader, the term and every member with role and P2P id (--json: the /status document).
  blixard cluster leave --peer host:port [--timeout 10s]
      The node at --peer leaves the cluster (a leader hands over leadership first), then stops.
  blixard cluster remove --id N --peer host:port [--force] [--timeout 10s]
      Removes member N (typically a dead one). Refused when the remaining reachable voters
      would be fewer than a quorum, unless --force.
  blixard cluster invite --peer host:port [--ttl 15m] [--uses 1] [--as voter|learner]
      [--timeout 10s]
      Prints an invite ticket (blx1…): 'blixard node --id N --join TICKET' on a new machine
      joins with it, with no --peers and no secret (it receives the cluster's). It lists up
      to three members and expires after --ttl (at most 168h) or --uses joins (at most 1000).
      --as learner: the machines it admits stay learners (replicas that never vote); voter,
      the default, lets the autopilot promote them. The cluster keeps only a hash of it,
      with its role: the ticket is printed once.
  blixard cluster invites --peer host:port [--json] [--timeout 10s]
      The outstanding invite tickets: hash prefix, expiry, uses left, role, created by.
  blixard cluster revoke-invite HASH --peer host:port [--timeout 10s]
      Revokes the outstanding ticket whose hash starts with HASH (6 hex digits or more).
  blixard cluster new-secret FILE
      Writes a new cluster secret (32 random bytes, base64) to FILE with mode 0600; never
      overwrites. Copy FILE to every node and operator and pass it as --cluster-secret-file.
  blixard cluster rotate-secret --data-dir DIR --cluster-secret-file OLD --new-secret-file NEW
      On a stopped node: checks that DIR records OLD, then records NEW, so that the node
      starts with --cluster-secret-file NEW. Rotate one node at a time (docs/operations.md).
  blixard cluster dns-records --name NAME --peer host:port [--timeout 10s]
      Zone-file TXT lines for NAME, one per member, each carrying the member's identity
      (signed when --cluster-secret-file is given). Published, they let joiners and clients
      use --peers dns:NAME / --peer dns:NAME with no HTTP request.
  blixard cluster backup FILE --peer host:port [--chunk-bytes N] [--timeout 10s]
      Writes a consistent image of the replicated state (keys, sessions, members), read
      linearizably from the member at --peer, to FILE (atomically, mode 0600). Restore it
      with 'blixard node --restore FILE'. --timeout bounds each call of the transfer.

--peer is any member's host:port (its --bind address); BLIXARD_PEER works too.
${FINDING_THE_NODE_HELP}
--cluster-secret-file PATH: the cluster's secret, when it has one (also from
BLIXARD_CLUSTER_SECRET_FILE, or the secret itself in BLIXARD_CLUSTER_SECRET).
Exit codes: 0 success, 1 operation failed, 2 usage error.
`;

const REMOVE_USAGE = "blixard cluster remove --id N --peer host:port [--force]";
const DNS_RECORDS_USAGE = "blixard cluster dns-records --name NAME --peer host:port";
/** TTL of the printed TXT records, in seconds: short, since members come and go. */
export const DNS_RECORD_TTL_SECONDS = 300;
const BACKUP_USAGE = "blixard cluster backup FILE --peer host:port [--chunk-bytes N]";
const INVITE_USAGE =
  "blixard cluster invite --peer host:port [--ttl 15m] [--uses 1] [--as voter|learner]";
const REVOKE_INVITE_USAGE = "blixard cluster revoke-invite HASH --peer host:port";
/** Default `--ttl` of an invite: long enough to start a machine, short for a bearer token. */
export const INVITE_TTL_MS_DEFAULT = 15 * 60_000;

const SPECS = {
  status: {
    usage: "blixard cluster status --peer host:port [--json]",
    allowed: ["peer", "timeout", "json"],
    help: HELP,
  },
  leave: {
    usage: "blixard cluster leave --peer host:port",
    allowed: ["peer", "timeout"],
    help: HELP,
  },
  remove: {
    usage: REMOVE_USAGE,
    allowed: ["peer", "timeout", "id", "force"],
    help: HELP,
    check: (flags) => {
      if (flags.id === null) throw new UsageError(`--id is required; usage: ${REMOVE_USAGE}`);
    },
  },
  "dns-records": {
    usage: DNS_RECORDS_USAGE,
    allowed: ["peer", "timeout", "name"],
    help: HELP,
    check: (flags) => {
      if (flags.name === null) {
        throw new UsageError(`--name is required; usage: ${DNS_RECORDS_USAGE}`);
      }
      if (!isDnsName(flags.name)) {
        throw new UsageError(
          `--name ${flags.name}: not a DNS name (letters, digits, '-', '_' in dot-separated labels)`,
        );
      }
    },
  },
  invite: {
    usage: INVITE_USAGE,
    allowed: ["peer", "timeout", "ttl", "uses", "as"],
    help: HELP,
    check: (flags) => void inviteRequest(flags),
  },
  invites: {
    usage: "blixard cluster invites --peer host:port [--json]",
    allowed: ["peer", "timeout", "json"],
    help: HELP,
  },
  "revoke-invite": {
    usage: REVOKE_INVITE_USAGE,
    allowed: ["peer", "timeout"],
    help: HELP,
    check: (flags) => {
      const [hash] = flags.positionals;
      if (flags.positionals.length !== 1 || !/^[0-9a-f]{6,64}$/.test(hash!)) {
        throw new UsageError(
          `give the hash (6 to 64 lowercase hex digits, as 'blixard cluster invites' shows ` +
            `it) of one ticket; usage: ${REVOKE_INVITE_USAGE}`,
        );
      }
    },
  },
  backup: {
    usage: BACKUP_USAGE,
    allowed: ["peer", "timeout", "chunk-bytes"],
    help: HELP,
    check: (flags) => {
      if (flags.positionals.length !== 1) {
        throw new UsageError(`give one FILE to write; usage: ${BACKUP_USAGE}`);
      }
      backupChunkBytes(flags);
      backupUrlOf(flags.peer);
    },
  },
} satisfies Record<string, ClientCommandSpec>;

/** Runs `blixard cluster <subcommand> …`; resolves to the exit code. */
export function runClusterCommand(
  args: readonly string[],
  context: { env: Environment; output: CliOutput },
): Promise<number> {
  const { output } = context;
  return runSubcommand("cluster", args, context, {
    help: HELP,
    specs: SPECS,
    local: {
      "new-secret": (rest) => writeNewSecret(rest, output),
      "rotate-secret": (rest) => rotateSecret(rest, context),
    },
    actions: {
      status: async (client, flags) => {
        const status = await client.status({ timeoutMs: flags.timeoutMs });
        output.stdout(flags.json ? JSON.stringify(status, null, 2) + "\n" : formatStatus(status));
        return 0;
      },
      leave: async (client, flags) => {
        const { index } = await client.leave({ timeoutMs: flags.timeoutMs });
        output.stdout(`the node left the cluster at index ${index} and is stopping\n`);
        return 0;
      },
      remove: async (client, flags) => {
        const { index } = await client.remove(flags.id!, {
          force: flags.force,
          timeoutMs: flags.timeoutMs,
        });
        output.stdout(`node ${flags.id} removed at index ${index}\n`);
        return 0;
      },
      "dns-records": async (client, flags, clusterSecret) => {
        const status = await client.status({ timeoutMs: flags.timeoutMs });
        output.stdout(await formatDnsRecords(status, { name: flags.name!, clusterSecret }));
        return 0;
      },
      invite: async (client, flags) => {
        const created = await client.invite(
          { ...inviteRequest(flags), createdBy: createdBy(context.env) },
          { timeoutMs: flags.timeoutMs },
        );
        output.stdout(`${created.ticket}\n`);
        output.stderr(
          `invite ${created.tokenHash.slice(0, HASH_SHOWN_DIGITS)} expires ` +
            `${new Date(created.expiresAtMs).toISOString()}: run 'blixard node --id N ` +
            "--join TICKET' on the new machine\n",
        );
        return 0;
      },
      invites: async (client, flags) => {
        const listed = await client.invites({ timeoutMs: flags.timeoutMs });
        output.stdout(
          flags.json ? JSON.stringify(listed, null, 2) + "\n" : formatInvites(listed),
        );
        return 0;
      },
      "revoke-invite": async (client, flags) => {
        const revoked = await client.revokeInvite(flags.positionals[0]!, {
          timeoutMs: flags.timeoutMs,
        });
        output.stdout(
          `invite ${
            revoked.tokenHash.slice(0, HASH_SHOWN_DIGITS)
          } revoked at index ${revoked.index}\n`,
        );
        return 0;
      },
      backup: (client, flags) => runBackup(client, flags, output),
    },
  });
}

const NEW_SECRET_USAGE = "blixard cluster new-secret FILE";

/**
 * `blixard cluster new-secret FILE`: a fresh secret in a new file that only its owner may
 * read. An existing file is never replaced: it may be the secret of a running cluster.
 */
async function writeNewSecret(args: readonly string[], output: CliOutput): Promise<number> {
  if (args.length === 1 && (args[0] === "-h" || args[0] === "--help")) {
    output.stdout(HELP);
    return 0;
  }
  const path = args[0];
  if (args.length !== 1 || path === undefined || path === "" || path.startsWith("-")) {
    throw new UsageError(`expected one FILE; usage: ${NEW_SECRET_USAGE}`);
  }
  try {
    // createNew: O_EXCL, so an existing file (or a link planted there) is never written.
    await Deno.writeTextFile(path, newSecretText(), { createNew: true, mode: 0o600 });
    // The mode given at creation is masked by the umask; 0600 is what the node demands.
    await Deno.chmod(path, 0o600);
  } catch (error) {
    const reason = error instanceof Deno.errors.AlreadyExists
      ? "the file exists (it may be a cluster's secret): choose another path, or remove it first"
      : `cannot write it (${reasonOf(error)}): choose a path in a directory you may write`;
    output.stderr(`blixard: ${path}: ${reason}\n`);
    return 1;
  }
  output.stdout(
    `wrote a new cluster secret to ${path} (mode 0600): copy it to every node and pass ` +
      "--cluster-secret-file\n",
  );
  return 0;
}

const ROTATE_USAGE =
  "blixard cluster rotate-secret --data-dir DIR --cluster-secret-file OLD --new-secret-file NEW";

/**
 * `blixard cluster rotate-secret`: moves a stopped node's data dir from the old secret to
 * the new one. It takes the data dir's lock, so it refuses while the node runs.
 */
async function rotateSecret(
  args: readonly string[],
  context: { env: Environment; output: CliOutput },
): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        "data-dir": { type: "string" },
        "cluster-secret-file": { type: "string" },
        "new-secret-file": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError(`${reasonOf(error)}; usage: ${ROTATE_USAGE}`);
  }
  if (values.help === true) {
    context.output.stdout(HELP);
    return 0;
  }
  const dataDir = values["data-dir"];
  const newPath = values["new-secret-file"];
  const old = parseClusterSecretSource(values["cluster-secret-file"], context.env);
  if (dataDir === undefined || newPath === undefined || old === null) {
    throw new UsageError(
      `--data-dir, --cluster-secret-file and --new-secret-file are required; usage: ${ROTATE_USAGE}`,
    );
  }
  const newSource = { kind: "file" as const, path: newPath, origin: "--new-secret-file" };
  try {
    const [previous, next] = await Promise.all(
      [old, newSource].map(async (source) => await (await loadClusterSecret(source)).fingerprint()),
    );
    if (previous === next) {
      throw new UsageError("--new-secret-file holds the same secret as --cluster-secret-file");
    }
    // openDataDir would create a mistyped one.
    if (!(await Deno.stat(dataDir).catch(() => null))?.isDirectory) {
      throw new Error(`data dir ${dataDir} does not exist: pass the node's --data-dir`);
    }
    const locked = await openDataDir(dataDir);
    try {
      rotateSecretFingerprint(dataDir, { previous: previous!, next: next! });
    } finally {
      await locked.release();
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (error instanceof EmptyClusterSecretError) throw new UsageError(error.message);
    context.output.stderr(`blixard: ${reasonOf(error)}\n`);
    return 1;
  }
  context.output.stdout(
    `data dir ${dataDir} now records the new secret: start the node with ` +
      `--cluster-secret-file ${newPath}\n`,
  );
  return 0;
}

/**
 * One zone-file line per member whose identity is known: `NAME. 300 IN TXT "blixard1 …"`,
 * signed with `clusterSecret` when given.
 */
export async function formatDnsRecords(
  status: StatusJson,
  options: { name: string; clusterSecret: ClusterSecret | null },
): Promise<string> {
  const owner = options.name.endsWith(".") ? options.name : `${options.name}.`;
  const clusterId = status.cluster_id;
  if (clusterId === null) throw new Error(`node ${status.node_id} knows no cluster id yet`);
  const nowSeconds = Date.now() / 1000;
  const lines: string[] = [];
  for (const member of status.members) {
    if (member.p2p_node_id === null) continue;
    const text = await formatDnsIdentity({
      cluster_id: clusterId,
      node_id: member.node_id,
      p2p_node_id: member.p2p_node_id,
      p2p_addresses: member.p2p_addresses,
      p2p_relay_url: member.p2p_relay_url,
    }, { secret: options.clusterSecret, nowSeconds });
    lines.push(`${owner} ${DNS_RECORD_TTL_SECONDS} IN TXT ${quotedTxtStrings(text)}`);
  }
  return lines.map((line) => `${line}\n`).join("");
}

/** Hex digits of a token hash shown: enough to tell tickets apart and to revoke one. */
const HASH_SHOWN_DIGITS = 12;

/** `--ttl`, `--uses` and `--as` of `flags`, checked, or their defaults. */
function inviteRequest(flags: ClientFlags): { ttlMs: number; uses: number; role: InviteRole } {
  let ttlMs = INVITE_TTL_MS_DEFAULT;
  if (flags.ttl !== null) {
    const parsed = parseDuration(flags.ttl);
    if (parsed === null || parsed < 1_000 || parsed > INVITE_LIMITS.ttlMsMax) {
      throw new UsageError(
        `--ttl ${flags.ttl}: must be a duration from 1s to 168h (7 days), such as 15m, 2h or 48h`,
      );
    }
    ttlMs = parsed;
  }
  let uses = 1;
  if (flags.uses !== null) {
    uses = /^[0-9]{1,4}$/.test(flags.uses) ? Number(flags.uses) : Number.NaN;
    if (!(uses >= 1 && uses <= INVITE_LIMITS.usesMax)) {
      throw new UsageError(
        `--uses ${flags.uses}: must be an integer from 1 to ${INVITE_LIMITS.usesMax}`,
      );
    }
  }
  const role = flags.as ?? "voter";
  if (role !== "voter" && role !== "learner") {
    throw new UsageError(
      `--as ${role}: must be voter (promoted once caught up, the default) or learner ` +
        "(never promoted)",
    );
  }
  return { ttlMs, uses, role };
}

/** Who asks for an invite, for the listing: `user@host`, bounded. */
function createdBy(env: Environment): string {
  const user = env.USER ?? env.LOGNAME ?? "unknown";
  let host = "unknown";
  try {
    host = Deno.hostname();
  } catch {
    // Without --allow-sys the host stays unknown: the label is informative only.
  }
  return `${user}@${host}`.slice(0, INVITE_LIMITS.createdByLengthMax);
}

/** The outstanding invites: one row each, expired, used and revoked ones left out. */
export function formatInvites(listed: { invites: InviteJson[]; nowMs: number }): string {
  const outstanding = listed.invites.filter((invite) =>
    invite.state === "active" && invite.expiresAtMs > listed.nowMs
  );
  if (outstanding.length === 0) return "no outstanding invites\n";
  const rows = [["HASH", "EXPIRES", "USES LEFT", "ROLE", "CREATED BY"]];
  for (const invite of outstanding.sort((a, b) => a.expiresAtMs - b.expiresAtMs)) {
    rows.push([
      invite.tokenHash.slice(0, HASH_SHOWN_DIGITS),
      new Date(invite.expiresAtMs).toISOString(),
      String(invite.usesLeft),
      invite.role,
      invite.createdBy,
    ]);
  }
  return formatTable(rows);
}

/** `rows` in columns padded to their widest cell, the first row a header. */
function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd() + "\n"
  ).join("");
}

/** The `--chunk-bytes` of `flags`, checked, or the default. */
function backupChunkBytes(flags: ClientFlags): number {
  if (flags.chunkBytes === null) return IMAGE_CHUNK_BYTES_DEFAULT;
  const value = /^[0-9]{1,9}$/.test(flags.chunkBytes) ? Number(flags.chunkBytes) : Number.NaN;
  if (!(value >= BACKUP_CHUNK_BYTES_MIN && value <= BACKUP_CHUNK_BYTES_MAX_REQUEST)) {
    throw new UsageError(
      `--chunk-bytes ${flags.chunkBytes}: must be an integer from ${BACKUP_CHUNK_BYTES_MIN} ` +
        `to ${BACKUP_CHUNK_BYTES_MAX_REQUEST}`,
    );
  }
  return value;
}

/** `GET /backup` of the member at `peer`: where its `/bootstrap` is. */
function backupUrlOf(peer: string): string {
  const entry = parsePeerEntry(peer);
  if (entry.kind !== "http") {
    throw new UsageError(
      `--peer ${peer}: a backup needs host:port or an http(s) URL of one member`,
    );
  }
  return new URL("/backup", entry.url).href;
}

/** `cluster backup FILE`: streams the image from the member into FILE. */
async function runBackup(
  client: BlixardClient,
  flags: ClientFlags,
  output: CliOutput,
): Promise<number> {
  const path = flags.positionals[0]!;
  const startedMs = performance.now();
  const { header, chunks } = await client.backup({
    chunkBytes: backupChunkBytes(flags),
    timeoutMs: flags.timeoutMs,
    httpUrl: backupUrlOf(flags.peer),
  });
  const written = await writeBackupFile(path, header, chunks);
  const seconds = ((performance.now() - startedMs) / 1000).toFixed(2);
  output.stdout(
    `backup of cluster ${header.clusterId} at index ${header.index} (term ${header.term}) ` +
      `from node ${header.nodeId} written to ${path}: ${written.bytes} bytes in ` +
      `${written.chunks} chunks, ${seconds} s\n`,
  );
  return 0;
}

/** The human form of `/status`: two header lines and one row per member. */
export function formatStatus(status: StatusJson): string {
  const lines = [
    `cluster ${status.cluster_id ?? "(none yet)"}`,
    `node ${status.node_id} is ${status.role}; leader ${
      status.leader_id ?? "unknown"
    }; term ${status.term}; ` +
    `commit ${status.commit_index}; applied ${status.applied_index}`,
    "",
  ];
  const rows = [["NODE", "ROLE", "P2P ID", "ADDRESSES"]];
  for (const member of status.members) {
    const leader = member.node_id === status.leader_id ? " (leader)" : "";
    rows.push([
      String(member.node_id),
      member.role + leader,
      member.p2p_node_id ?? "unknown",
      member.p2p_addresses.join(",") +
      (member.p2p_relay_url === null ? "" : ` relay ${member.p2p_relay_url}`),
    ]);
  }
  lines.push(formatTable(rows).trimEnd());
  if (status.join !== null) {
    const catchUp = status.join.catch_up;
    lines.push(
      "",
      `join: ${status.join.phase} since ${status.join.since}` +
        (catchUp == null
          ? ""
          : `; log at ${catchUp.match_index} of commit ${catchUp.commit_index}`),
    );
    if (status.join.last_error !== null) lines.push(`last join error: ${status.join.last_error}`);
  }
  const paths = (status.paths ?? []).map((entry) =>
    `node ${entry.node_id} ${entry.path}${entry.rtt_ms === null ? "" : ` ${entry.rtt_ms} ms`}`
  );
  if (paths.length > 0) lines.push("", `paths: ${paths.join("; ")}`);
  if (status.learner_reason != null) lines.push(`learner: ${status.learner_reason}`);
  const diskFull = status.disk_full;
  if (diskFull != null) {
    lines.push(
      `disk full since ${diskFull.since} (${diskFull.error})` +
        (diskFull.free_bytes === null ? "" : `, ${diskFull.free_bytes} bytes free`) +
        ": the node refuses requests until space is freed in its data dir",
    );
  }
  for (const join of status.joins ?? []) {
    lines.push(
      `joining: node ${join.node_id} ${join.phase} since ${join.since}` +
        (join.lag === null ? "" : `; ${join.lag} entries behind the commit index`) +
        (join.learner_reason == null ? "" : `; ${join.learner_reason}`),
    );
  }
  return lines.join("\n") + "\n";
}
