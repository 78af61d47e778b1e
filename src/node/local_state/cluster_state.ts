/**
 * Opens the node's durable cluster state and makes the start-up decision of DESIGN.md
 * section 6:
 *
 * 1. the data dir holds Raft state → restart as that member (no bootstrap, no join, even
 *    when every `--peers` address is down);
 * 2. no `--peers` (and, with mDNS, nothing found to join) → found a new single-node cluster
 *    (the founding log, `founding.ts`), named `--cluster-id` or a random UUID;
 * 3. otherwise → join.
 *
 * @module
 */

import type { NodeConfig } from "../../config/node_config.ts";
import { reasonOf, StartupError } from "../../util/errors.ts";
import { SqliteStorage } from "../../storage/sqlite_storage.ts";
import { StorageCorruptionError } from "../../storage/storage.ts";
import { KvStateMachine } from "../../state_machine/kv_state_machine.ts";
import { SqliteStateStore } from "../../state_machine/sqlite_state_store.ts";
import { foundingLog } from "../../state_machine/founding.ts";
import { committedConfState, joinUnfinished } from "./unfinished_join.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import type { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import { getLogger } from "../../log/logging.ts";
import { checkSecretFingerprint, recordSecretFingerprint } from "./secret_fingerprint.ts";
import { type ForcedRecord, forceNewCluster, readForcedRecord } from "./force_new_cluster.ts";

const log = getLogger(["blixard", "node"]);

/** How this start began. */
export type StartMode = "restart" | "found" | "join";

/** The node's storage, state machine and the start-up decision. */
export interface ClusterState {
  storage: SqliteStorage;
  stateMachine: KvStateMachine;
  start: StartMode;
  /** This node's own member record, as it is now (addresses of this run). */
  self: MemberInfo;
  /** When this node's membership was forced (`--force-new-cluster`), or `null`. */
  forced: ForcedRecord | null;
}

/**
 * Opens `<data-dir>/blixard.db` and decides how the node starts. A restart checks the
 * cluster secret's fingerprint recorded in the data dir (`secret_fingerprint.ts`); founding
 * and joining record it (`secretFingerprint`: `null` without a secret). `mdnsJoin` says that
 * mDNS found a cluster to join (the formation rule), which counts as `--peers`.
 */
export function openClusterState(
  config: NodeConfig,
  context: {
    dataDirPath: string;
    endpoint: P2pEndpoint;
    secretFingerprint?: string | null;
    mdnsJoin?: boolean;
    /** The storage, when the start opened it already (`openStorage`); owned from now on. */
    storage?: SqliteStorage | null;
  },
): ClusterState {
  const storage = context.storage ?? openStorage(context.dataDirPath);
  try {
    const stateMachine = new KvStateMachine(new SqliteStateStore(storage));
    const self = selfMemberInfo(config.nodeId, context.endpoint);
    // A joiner stopped before its log named it in a committed entry (killed while it received
    // its first snapshot, before it caught up to its own addition, or holding an addition
    // that was never committed) knows no member, or only some, to restart with: it joins
    // again, keeping its log, term and vote (`unfinished_join.ts`).
    const unfinishedJoin = config.peers.length > 0 && !config.forceNewCluster &&
      joinUnfinished(committedConfState(storage), self, (key) => stateMachine.isRevoked(key));
    if (holdsRaftState(storage) && unfinishedJoin) {
      checkOwnership(stateMachine, self, storage.path);
      log.info(
        "this data dir's log does not name this node yet (a join that did not finish): joining again",
      );
      recordSecretFingerprint(context.dataDirPath, context.secretFingerprint ?? null);
      return { storage, stateMachine, start: "join", self, forced: null };
    }
    if (holdsRaftState(storage)) {
      checkOwnership(stateMachine, self, storage.path);
      checkSecretFingerprint(context.dataDirPath, context.secretFingerprint ?? null);
      if (config.forceNewCluster) {
        forceNewCluster(storage, { stateMachine, self, nowMs: Date.now() });
      }
      return { storage, stateMachine, start: "restart", self, forced: readForcedRecord(storage) };
    }
    if (config.forceNewCluster) {
      removeIfPristine(storage);
      throw new StartupError(
        `--force-new-cluster: ${context.dataDirPath} holds no Raft state, so there is nothing ` +
          `to recover: start a surviving member's data dir with it`,
      );
    }
    recordSecretFingerprint(context.dataDirPath, context.secretFingerprint ?? null);
    if (config.peers.length > 0 || context.mdnsJoin === true || config.joinTicket !== null) {
      return { storage, stateMachine, start: "join", self, forced: null };
    }
    const clusterId = config.discovery.clusterId ?? crypto.randomUUID();
    storage.persist({ ...foundingLog(self, clusterId), snapshot: null });
    log.info("founded cluster {clusterId} with this node as its only voter", { clusterId });
    return { storage, stateMachine, start: "found", self, forced: null };
  } catch (error) {
    storage.close();
    throw error;
  }
}

/**
 * This node's member record as it is now: its id, key, the addresses of this run, and the
 * home relay its endpoint really uses (`null` until it has reached one), not `--relay-url`.
 */
export function selfMemberInfo(
  nodeId: number,
  endpoint: Pick<P2pEndpoint, "nodeId" | "addresses" | "homeRelayUrl">,
): MemberInfo {
  return {
    nodeId,
    p2pNodeId: endpoint.nodeId,
    addresses: endpoint.addresses(),
    relayUrl: endpoint.homeRelayUrl(),
  };
}

/**
 * Whether `storage` holds Raft state: a term (a vote counts) or an entry. A database without
 * any is one a join created and never received entries into; it counts as no data dir.
 */
export function holdsRaftState(storage: SqliteStorage): boolean {
  return storage.initialState().hardState.term > 0 || storage.lastIndex() > 0;
}

/**
 * Removes a database that never received Raft state (a join that did not succeed), and
 * the secret fingerprint the join recorded beside it.
 */
export function removeIfPristine(storage: SqliteStorage): void {
  if (holdsRaftState(storage)) return;
  storage.close();
  recordSecretFingerprint(storage.path.replace(/\/[^/]*$/, ""), null);
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.removeSync(storage.path + suffix);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/** Opens the Raft storage, turning a failure into one `StartupError` line. */
export function openStorage(dataDirPath: string): SqliteStorage {
  try {
    return SqliteStorage.open(dataDirPath);
  } catch (error) {
    if (error instanceof StorageCorruptionError) {
      throw new StartupError(reasonOf(error), { cause: error });
    }
    throw new StartupError(
      `cannot open the Raft storage in ${dataDirPath}: ${reasonOf(error)}`,
      { cause: error },
    );
  }
}

/**
 * A data dir belongs to one member: restarting it under another `--id` would make one
 * key speak for two ids. The applied member records tell which id this key has.
 */
function checkOwnership(stateMachine: KvStateMachine, self: MemberInfo, path: string): void {
  const mine = stateMachine.members().find((member) => member.info?.p2pNodeId === self.p2pNodeId);
  if (mine === undefined || mine.nodeId === self.nodeId) return;
  throw new StartupError(
    `${path} belongs to node ${mine.nodeId}, not --id ${self.nodeId}: start it with --id ${mine.nodeId}, ` +
      `or use another --data-dir for node ${self.nodeId}`,
  );
}
