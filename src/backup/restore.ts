/**
 * `blixard node --restore FILE`: found a new cluster from a backup.
 *
 * 1. `checkRestore`, before the node writes anything (not even its data dir's lock): the
 *    data dir is empty or absent, and the file is read through once: its format version,
 *    its checksum, and every chunk's shape. A corrupt, truncated or foreign file ends the
 *    start with one line naming it and the problem.
 * 2. `restoreDataDir`, once the endpoint is bound (this node's record needs its key and
 *    addresses): one SQLite transaction loads every state table from the file, then makes
 *    the image a cluster of this node alone with a NEW cluster id (the old cluster's
 *    members can never mix with it: they do not know this node's key, and it does not know
 *    theirs), and records the Raft snapshot (metadata only) at the backup's index and term.
 *    The image is written once, into the tables: snapshots stream to joiners from the
 *    tables, as after any compaction. The node then starts as a restarted single voter,
 *    and others join it as usual.
 *
 * @module
 */

import { StartupError } from "../util/errors.ts";
import type { MemberInfo } from "../state_machine/member_info.ts";
import { SqliteStateStore, STATE_SCHEMA_VERSION } from "../state_machine/sqlite_state_store.ts";
import { openStorage, removeIfPristine } from "../node/local_state/cluster_state.ts";
import { getLogger } from "../log/logging.ts";
import {
  BackupFileError,
  BackupReader,
  type BackupSummary,
  verifyBackupFile,
} from "./backup_file.ts";
import {
  BackupImageError,
  clearStateTables,
  decodeImageChunk,
  importImageChunk,
} from "./backup_image.ts";

const log = getLogger(["blixard", "node"]);

/** A backup that `checkRestore` read through and found sound. */
export interface CheckedBackup {
  path: string;
  summary: BackupSummary;
}

/**
 * Refuses a restore that cannot succeed, before anything is written: a data dir that is
 * not empty, or a file that is not a sound backup this build can load.
 *
 * @throws {StartupError} one line naming the directory or file and the problem.
 */
export function checkRestore(path: string, dataDir: string): CheckedBackup {
  checkEmptyDataDir(dataDir);
  let summary: BackupSummary;
  try {
    summary = verifyBackupFile(path, (chunk, number) => {
      try {
        decodeImageChunk(chunk);
      } catch (error) {
        throw new BackupFileError(
          `${path} is damaged: chunk ${number}: ${(error as Error).message}`,
        );
      }
    });
  } catch (error) {
    if (error instanceof BackupFileError) {
      throw new StartupError(`--restore ${error.message}`, { cause: error });
    }
    throw error;
  }
  const { header } = summary;
  if (header.stateSchemaVersion !== STATE_SCHEMA_VERSION) {
    throw new StartupError(
      `--restore ${path}: the backup's state tables are of version ${header.stateSchemaVersion}; ` +
        `this build has version ${STATE_SCHEMA_VERSION}: restore it with the blixard release that wrote it`,
    );
  }
  if (header.index < 1 || header.term < 1) {
    throw new StartupError(
      `--restore ${path}: the backup is at index ${header.index}, term ${header.term}: it holds no cluster state`,
    );
  }
  return { path, summary };
}

function checkEmptyDataDir(dataDir: string): void {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dataDir)].map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new StartupError(`--data-dir ${dataDir}: cannot read it: ${(error as Error).message}`);
  }
  if (names.length > 0) {
    throw new StartupError(
      `--restore into --data-dir ${dataDir}: the directory is not empty (it holds ` +
        `${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""}); restore into an ` +
        `empty or new directory`,
    );
  }
}

/**
 * Writes the checked backup into the (empty) data dir as a new cluster of `self` alone;
 * returns the new cluster id. All in one transaction: on failure nothing stays behind.
 */
export function restoreDataDir(
  backup: CheckedBackup,
  context: { dataDirPath: string; self: MemberInfo },
): string {
  const startedMs = performance.now();
  const storage = openStorage(context.dataDirPath);
  const { header } = backup.summary;
  const clusterId = crypto.randomUUID();
  try {
    const store = new SqliteStateStore(storage);
    storage.transaction(() => {
      clearStateTables(storage.database);
      for (const chunk of BackupReader.open(backup.path).chunks()) {
        importImageChunk(storage.database, decodeImageChunk(chunk));
      }
      if (store.appliedIndex() !== header.index) {
        throw new BackupImageError(
          `the image is at applied index ${store.appliedIndex()}, its header says ${header.index}`,
        );
      }
      // A cluster of this node alone, under a new id: the old members' records go.
      for (const info of store.memberInfos()) store.deleteMemberInfo(info.nodeId);
      store.putMemberInfo(context.self);
      const confState = { voters: [context.self.nodeId], learners: [] };
      store.setAppliedConfState(confState);
      store.setClusterId(clusterId);
      // The image is written once, into the tables; the snapshot record carries no data,
      // as compaction's does (joiners get the image streamed from the tables).
      storage.persist({
        snapshot: {
          metadata: { index: header.index, term: header.term, confState },
          data: new Uint8Array(0),
        },
        entries: [],
        hardState: { term: header.term, vote: 0, commit: header.index },
      });
    });
  } catch (error) {
    removeIfPristine(storage);
    storage.close();
    if (error instanceof BackupFileError || error instanceof BackupImageError) {
      throw new StartupError(`--restore ${backup.path}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  storage.close();
  log.info(
    "restored {path} (cluster {oldClusterId}, index {index}, term {term}, taken {createdAt} " +
      "from node {nodeId}) as the new cluster {clusterId} with this node as its only voter, " +
      "in {restore_ms} ms",
    {
      path: backup.path,
      oldClusterId: header.clusterId,
      ...header,
      clusterId,
      restore_ms: Math.round(performance.now() - startedMs),
    },
  );
  return clusterId;
}
