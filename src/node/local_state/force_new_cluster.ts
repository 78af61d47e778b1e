/**
 * `blixard node --force-new-cluster`: recovery when a quorum is lost for good (etcd's
 * `--force-new-cluster`, Consul's and rqlite's `peers.json`).
 *
 * On a surviving member, before its Raft core starts, the membership is rewritten to this
 * node alone through its own log, the way every change is made: after its last entry it
 * appends `promoteLearner(self)` when it was a learner and `removeNode(x)` for every other
 * member, and marks its whole log committed. Its data and cluster id stay. Entries it held
 * that the old cluster had not committed yet become committed too (as etcd does); writes
 * that the lost members had acknowledged but this node never received are gone.
 *
 * The node remembers that it was forced, when, from which index, and which keys it removed
 * (`forced_membership`, a table of its own database, not replicated and not backed up);
 * `/status` shows it. The removed members' keys are refused at once, as for any removal;
 * an old member that comes back and asks this node finds its own key among the removed ones
 * and stops (`removal_watch.ts`).
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { StartupError } from "../../util/errors.ts";
import { getLogger } from "../../log/logging.ts";
import { applyMembershipChange, isMember, membershipChangeError } from "../../raft/membership.ts";
import type { ConfState, Entry, MembershipChange, NodeId } from "../../raft/types.ts";
import type { KvStateMachine } from "../../state_machine/kv_state_machine.ts";
import { decodeMemberInfo, type MemberInfo } from "../../state_machine/member_info.ts";
import type { SqliteStorage } from "../../storage/sqlite_storage.ts";
import type { ForcedJson } from "../../transport/cluster_rpcs.ts";

const log = getLogger(["blixard", "node"]);

/** A member that the force removed: its id and, when known, its key. */
export interface RemovedMember {
  nodeId: NodeId;
  p2pNodeId: string | null;
}

/** That, when and how this node's membership was forced. */
export interface ForcedRecord {
  /** When (Unix ms, this node's clock). */
  atMs: number;
  /** The node's last log index before the force: the entries after it rewrote the membership. */
  fromIndex: number;
  removed: RemovedMember[];
}

const TABLE_SQL = `CREATE TABLE IF NOT EXISTS forced_membership (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  forced_at_ms INTEGER NOT NULL, from_index INTEGER NOT NULL, removed TEXT NOT NULL)`;

/**
 * Rewrites the membership in `storage` to `self` alone (see the module doc). Throws
 * `StartupError` when this node is not a member of its own configuration.
 */
export function forceNewCluster(
  storage: SqliteStorage,
  context: { stateMachine: KvStateMachine; self: MemberInfo; nowMs: number },
): ForcedRecord {
  const { self } = context;
  const { hardState, confState } = storage.initialState();
  if (!isMember(confState, self.nodeId)) {
    throw new StartupError(
      `--force-new-cluster: node ${self.nodeId} is not a member in its data dir ` +
        `(voters ${confState.voters.join(",") || "none"}); start a surviving member's data dir`,
    );
  }
  const fromIndex = storage.lastIndex();
  const changes: MembershipChange[] = [
    ...(confState.learners.includes(self.nodeId)
      ? [{ type: "promoteLearner" as const, nodeId: self.nodeId }]
      : []),
    ...[...confState.voters, ...confState.learners]
      .filter((nodeId) => nodeId !== self.nodeId)
      .map((nodeId) => ({ type: "removeNode" as const, nodeId })),
  ];
  const entries = membershipEntries(changes, { confState, fromIndex, term: hardState.term });
  const keys = knownKeys(storage, context.stateMachine);
  const removed = changes.filter((change) => change.type === "removeNode")
    .map(({ nodeId }) => ({ nodeId, p2pNodeId: keys.get(nodeId) ?? null }));
  const record = { atMs: context.nowMs, fromIndex, removed };
  storage.transaction(() => {
    storage.persist({
      entries,
      hardState: { ...hardState, commit: fromIndex + entries.length },
      snapshot: null,
    });
    writeForcedRecord(storage.database, record);
  });
  log.warn(
    "FORCED A NEW CLUSTER: the membership is now node {nodeId} alone, from index {fromIndex} " +
      "(commit index was {commit}); removed {removed}. Writes that only the removed members " +
      "had received are lost. Add fresh nodes with --peers; never restart the removed ones " +
      "with their old data dirs while this node is unreachable",
    {
      nodeId: self.nodeId,
      fromIndex,
      commit: hardState.commit,
      removed: removed.map((member) => `node ${member.nodeId}`).join(", ") || "nobody",
    },
  );
  return record;
}

/** The entries that make `changes`, each valid after the one before. */
function membershipEntries(
  changes: readonly MembershipChange[],
  position: { confState: ConfState; fromIndex: number; term: number },
): Entry[] {
  let conf = position.confState;
  return changes.map((change, offset) => {
    const invalid = membershipChangeError(conf, change);
    if (invalid !== null) throw new StartupError(`--force-new-cluster: ${invalid}`);
    conf = applyMembershipChange(conf, change);
    return {
      type: "membership" as const,
      term: position.term,
      index: position.fromIndex + 1 + offset,
      change,
    };
  });
}

/** The key of each member this node knows of: applied records, then adds still in the log. */
function knownKeys(storage: SqliteStorage, stateMachine: KvStateMachine): Map<NodeId, string> {
  const keys = new Map<NodeId, string>();
  for (const member of stateMachine.members()) {
    if (member.info !== null) keys.set(member.nodeId, member.info.p2pNodeId);
  }
  const first = Math.max(stateMachine.appliedIndex() + 1, storage.firstIndex());
  const last = storage.lastIndex();
  for (let next = first; next <= last;) {
    const entries = storage.entries(next, last + 1, 1024 * 1024);
    for (const entry of entries) {
      if (entry.type !== "membership" || entry.change.type !== "addLearner") continue;
      const info = decodeMemberInfo(entry.change.context);
      if (info.ok) keys.set(entry.change.nodeId, info.value.p2pNodeId);
    }
    next = entries.at(-1)!.index + 1;
  }
  return keys;
}

function writeForcedRecord(database: DatabaseSync, record: ForcedRecord): void {
  database.exec(TABLE_SQL);
  database.prepare(
    "INSERT OR REPLACE INTO forced_membership (id, forced_at_ms, from_index, removed) VALUES (1, ?, ?, ?)",
  ).run(record.atMs, record.fromIndex, JSON.stringify(record.removed));
}

/** The record of the last force, or `null` when this node's membership was never forced. */
export function readForcedRecord(storage: SqliteStorage): ForcedRecord | null {
  const database = storage.database;
  const table = database.prepare(
    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'forced_membership'",
  ).get();
  if (table === undefined) return null;
  const row = database.prepare(
    "SELECT forced_at_ms, from_index, removed FROM forced_membership WHERE id = 1",
  ).get() as { forced_at_ms: number; from_index: number; removed: string } | undefined;
  if (row === undefined) return null;
  let removed: RemovedMember[];
  try {
    removed = JSON.parse(row.removed);
  } catch {
    throw storage.corruption(`forced_membership.removed ${row.removed} is not JSON`);
  }
  return { atMs: row.forced_at_ms, fromIndex: row.from_index, removed };
}

/** The record as `/status` shows it. */
export function forcedJson(record: ForcedRecord): ForcedJson {
  return {
    at: new Date(record.atMs).toISOString(),
    from_index: record.fromIndex,
    removed: record.removed.map((member) => ({
      node_id: member.nodeId,
      p2p_node_id: member.p2pNodeId,
    })),
  };
}
