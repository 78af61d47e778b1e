/**
 * The `/status` document (DESIGN.md section 4): a stable snake_case JSON shape that
 * scripts rely on, built from a read of the node's state. The same document answers the
 * `cluster.status` RPC.
 *
 * @module
 */

import type { RaftStatus } from "../../raft/raft_core.ts";
import { NO_NODE, type NodeId } from "../../raft/types.ts";
import type { Member } from "../../state_machine/kv_state_machine.ts";
import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import type { JoinStatusJson } from "../join/join_progress.ts";
import type { JoinInFlightJson } from "../membership/joins_in_flight.ts";
import { learnerOwnReason, type PromotionPolicy } from "../membership/autopilot.ts";

/** `/status` `join.catch_up`. */
export interface JoinCatchUpJson {
  match_index: number;
  commit_index: number;
}
import type { MemberDirectory } from "../membership/member_directory.ts";

/** What `/status` is built from. */
export interface StatusSources {
  nodeId: NodeId;
  /** `null` until the node has a Raft state (a joiner before its first entries). */
  raft: RaftStatus | null;
  clusterId: string | null;
  appliedIndex: number;
  /** The applied members with their records. */
  members: Member[];
  directory: MemberDirectory;
  join: JoinStatusJson | null;
  /** The joins this node serves as leader (none on other nodes, and by default). */
  joinsInFlight?: JoinInFlightJson[];
  /** The path to a member and its RTT, when a connection to it is open (`pathTo`). */
  pathOf?: (nodeId: NodeId) => { path: "direct" | "relay" | "none"; rttMs: number | null } | null;
  stopping: boolean;
  /** The autopilot's policy, which `learner_reason` explains. */
  promotionPolicy: PromotionPolicy;
  /** While the disk is full (`diskFullJson`); `null` or absent while it has room. */
  diskFull?: DiskFullJson | null;
}

/** `/status` `disk_full`. */
export type DiskFullJson = NonNullable<StatusJson["disk_full"]>;

/** Longest storage error `disk_full.error` shows (the schema's bound). */
const DISK_FULL_ERROR_CHARS_MAX = 1024;

/**
 * `/status` `disk_full` from the Raft node's `diskFull` (`sinceMs` on the monotonic clock
 * whose present is `nowMs`), at wall time `wallNowMs`, with the bytes free in the data dir.
 */
export function diskFullJson(
  diskFull: { sinceMs: number; message: string },
  clock: { nowMs: number; wallNowMs: number },
  freeBytes: number | null,
): DiskFullJson {
  const sinceWallMs = clock.wallNowMs - Math.max(0, clock.nowMs - diskFull.sinceMs);
  return {
    since: new Date(sinceWallMs).toISOString(),
    error: diskFull.message.slice(0, DISK_FULL_ERROR_CHARS_MAX),
    free_bytes: freeBytes === null ? null : Math.max(0, Math.floor(freeBytes)),
  };
}

/** The `/status` document. */
export function statusJson(sources: StatusSources): StatusJson {
  const raft = sources.raft;
  const role = roleOf(sources);
  return {
    node_id: sources.nodeId,
    cluster_id: sources.clusterId,
    role,
    term: raft?.term ?? 0,
    leader_id: raft === null || raft.leaderId === NO_NODE ? null : raft.leaderId,
    commit_index: raft?.commit ?? 0,
    applied_index: sources.appliedIndex,
    members: membersOf(sources),
    join: sources.join === null ? null : { ...sources.join, catch_up: catchUpOf(raft) },
    joins: sources.joinsInFlight ?? [],
    learner_reason: role === "learner" && raft !== null
      ? sources.promotionPolicy.keptLearner?.(sources.nodeId) ??
        learnerOwnReason(raft.confState, sources.promotionPolicy)
      : null,
    paths: pathsOf(sources),
    disk_full: sources.diskFull ?? null,
  };
}

/** The path to each other member this node has a connection to, and its RTT (0.1 ms). */
function pathsOf(sources: StatusSources): NonNullable<StatusJson["paths"]> {
  const conf = sources.raft?.confState ?? { voters: [], learners: [] };
  return [...conf.voters, ...conf.learners].sort((a, b) => a - b).flatMap((nodeId) => {
    const path = nodeId === sources.nodeId ? null : sources.pathOf?.(nodeId) ?? null;
    if (path === null) return [];
    const rttMs = path.rttMs === null ? null : Math.round(path.rttMs * 10) / 10;
    return [{ node_id: nodeId, path: path.path, rtt_ms: rttMs }];
  });
}

/**
 * How far a joining node's log has come, as it knows it: its last index (what the leader
 * matches) against the commit index it has heard of. The leader's `joins` has the lag
 * against its own commit index.
 */
function catchUpOf(raft: RaftStatus | null): JoinCatchUpJson | null {
  return raft === null ? null : { match_index: raft.lastIndex, commit_index: raft.commit };
}

/** The `/status` document of a node that is still starting: no Raft state, no members yet. */
export function startingStatusJson(nodeId: NodeId, join: JoinStatusJson | null): StatusJson {
  return {
    node_id: nodeId,
    cluster_id: null,
    role: "joining",
    term: 0,
    leader_id: null,
    commit_index: 0,
    applied_index: 0,
    members: [],
    join: join === null ? null : { ...join, catch_up: null },
    joins: [],
    learner_reason: null,
    paths: [],
    disk_full: null,
  };
}

/** `/status` over HTTP on a node with a cluster secret: see {@linkcode publicStatusJson}. */
export interface PublicStatusJson {
  node_id: NodeId;
  cluster_id: string | null;
  role: StatusJson["role"];
  leader_id: NodeId | null;
  members: { node_id: NodeId; role: "voter" | "learner" }[];
  join: { phase: string; since: string } | null;
  /** Since when the node's disk has been full (it refuses requests), or `null`. */
  disk_full: { since: string } | null;
  /** Where the whole document is, for an operator who holds the secret. */
  full_status: string;
}

/** Where the whole status is with a secret. */
export const FULL_STATUS_COMMAND = "blixard cluster status --json --cluster-secret-file FILE";

/**
 * What `/status` shows anyone who reaches the HTTP port of a node with a cluster secret:
 * enough to tell whether the node serves, what it is and whether the cluster has a leader
 * and how many members of each role (the ids and the leader are in `/bootstrap` anyway).
 * Not the members' P2P ids and addresses (a map for an attacker, and the gate on
 * `cluster.status` would be moot), the term and indexes, or join errors: the whole document
 * answers the authenticated `cluster.status` RPC.
 */
export function publicStatusJson(status: StatusJson): PublicStatusJson {
  return {
    node_id: status.node_id,
    cluster_id: status.cluster_id,
    role: status.role,
    leader_id: status.leader_id,
    members: status.members.map((member) => ({ node_id: member.node_id, role: member.role })),
    join: status.join === null ? null : { phase: status.join.phase, since: status.join.since },
    disk_full: status.disk_full == null ? null : { since: status.disk_full.since },
    full_status: FULL_STATUS_COMMAND,
  };
}

function roleOf(sources: StatusSources): StatusJson["role"] {
  if (sources.stopping) return "stopping";
  const raft = sources.raft;
  if (raft === null) return "joining";
  const { voters, learners } = raft.confState;
  if (learners.includes(sources.nodeId)) return "learner";
  if (!voters.includes(sources.nodeId)) return "joining";
  switch (raft.role) {
    case "leader":
      return "leader";
    case "candidate":
    case "preCandidate":
      return "candidate";
    case "follower":
      return "follower";
  }
}

/**
 * The configuration in force (the core's, which includes appended changes) with each
 * member's record; the applied members fill in what the directory does not know.
 */
function membersOf(sources: StatusSources): StatusJson["members"] {
  const conf = sources.raft?.confState ?? { voters: [], learners: [] };
  const applied = new Map(sources.members.map((member) => [member.nodeId, member]));
  const entry = (nodeId: NodeId, role: "voter" | "learner") => {
    const record = sources.directory.recordOf(nodeId) ?? applied.get(nodeId)?.info ?? null;
    return {
      node_id: nodeId,
      role,
      p2p_node_id: record?.p2pNodeId ?? null,
      p2p_addresses: record?.addresses ?? [],
      p2p_relay_url: record?.relayUrl ?? null,
    };
  };
  return [
    ...conf.voters.map((nodeId) => entry(nodeId, "voter" as const)),
    ...conf.learners.map((nodeId) => entry(nodeId, "learner" as const)),
  ].sort((a, b) => a.node_id - b.node_id);
}
