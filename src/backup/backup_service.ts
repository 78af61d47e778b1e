/**
 * `BackupService`: a member's side of `cluster backup`.
 *
 * `begin` first waits for a ReadIndex round (Raft thesis §6.4), so every write that was
 * acknowledged before the request is applied here; it then opens a read-only SQLite
 * connection inside one read transaction (`SqliteStorage.openSnapshotReader`). That
 * snapshot is the image: it stays the same while the node keeps applying and serving, and
 * its applied index (at least the ReadIndex) is the backup's index. `next` reads the
 * following chunk from it, so the member holds one chunk in memory at a time.
 *
 * At most `BACKUPS_MAX` backups run at once, and one that is not read from for
 * `BACKUP_IDLE_MS` is dropped: an open snapshot keeps the WAL from being checkpointed.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { getLogger } from "../log/logging.ts";
import type { RaftNode } from "../node/raft_node.ts";
import { ClusterError } from "../node/cluster_error.ts";
import type { KvStateMachine } from "../state_machine/kv_state_machine.ts";
import { STATE_SCHEMA_VERSION } from "../state_machine/sqlite_state_store.ts";
import type { SqliteStorage } from "../storage/sqlite_storage.ts";
import { RpcError, type RpcServer } from "../transport/rpc.ts";
import { imageChunks, imagePosition } from "./backup_image.ts";
import { BACKUP_BEGIN_RPC, BACKUP_NEXT_RPC } from "./backup_rpcs.ts";
import type { RpcResponseOf } from "../transport/rpc.ts";

const log = getLogger(["blixard", "backup"]);

/** Backups a member serves at once. */
export const BACKUPS_MAX = 2;
/** A backup not read from for this long is dropped. */
export const BACKUP_IDLE_MS = 30_000;

interface Session {
  reader: DatabaseSync;
  chunks: Generator<Uint8Array>;
  /** The number of the chunk `next` must ask for. */
  sequence: number;
  idleTimer: ReturnType<typeof setTimeout>;
  index: number;
  startedAtMs: number;
  chunkCount: number;
  bytes: number;
}

/** What the service needs from the node. */
export interface BackupServiceOptions {
  nodeId: number;
  storage: SqliteStorage;
  stateMachine: KvStateMachine;
  raft: Pick<RaftNode, "read">;
}

/** Serves `cluster.backup_begin` and `cluster.backup_next`. */
export class BackupService {
  readonly #options: BackupServiceOptions;
  readonly #sessions = new Map<string, Session>();
  #closed = false;

  constructor(options: BackupServiceOptions) {
    this.#options = options;
  }

  /** Adds the backup methods to `server` (pass the gated server when there is a secret). */
  register(server: Pick<RpcServer, "register">): void {
    server.register(BACKUP_BEGIN_RPC, (request, context) => this.#begin(request, context.signal));
    server.register(BACKUP_NEXT_RPC, (request) => this.#next(request));
  }

  /** Drops every backup in progress (the node is stopping; storage closes next). */
  close(): void {
    this.#closed = true;
    for (const id of [...this.#sessions.keys()]) this.#drop(id);
  }

  async #begin(
    request: { chunkBytes: number },
    signal: AbortSignal,
  ): Promise<RpcResponseOf<typeof BACKUP_BEGIN_RPC>> {
    if (this.#sessions.size >= BACKUPS_MAX) {
      throw new RpcError("overloaded", `${BACKUPS_MAX} backups are in progress; retry later`);
    }
    const { raft, stateMachine, storage, nodeId } = this.#options;
    let readIndex: number;
    try {
      readIndex = await raft.read(() => stateMachine.appliedIndex(), { signal });
    } catch (error) {
      if (error instanceof ClusterError) throw new RpcError(error.code, error.message);
      throw error;
    }
    if (this.#closed) throw new RpcError("stopping", "the node is stopping");
    const reader = storage.openSnapshotReader();
    const position = imagePosition(reader);
    if (position.clusterId === null || position.index < readIndex) {
      reader.close();
      throw new RpcError(
        "unavailable",
        `this node cannot serve a backup yet (applied index ${position.index}, ` +
          `read index ${readIndex}); ask another member`,
      );
    }
    const backupId = crypto.randomUUID();
    this.#sessions.set(backupId, {
      reader,
      chunks: imageChunks(reader, { chunkBytes: request.chunkBytes }),
      sequence: 1,
      idleTimer: this.#idleTimer(backupId),
      index: position.index,
      startedAtMs: performance.now(),
      chunkCount: 0,
      bytes: 0,
    });
    log.info("backup {backupId} started at index {index} (term {term})", {
      backupId,
      index: position.index,
      term: position.term,
    });
    return {
      backupId,
      clusterId: position.clusterId,
      index: position.index,
      term: position.term,
      nodeId,
      createdAt: new Date().toISOString(),
      stateSchemaVersion: STATE_SCHEMA_VERSION,
    };
  }

  #next(request: { backupId: string; sequence: number }): { chunk: Uint8Array | null } {
    const session = this.#sessions.get(request.backupId);
    if (session === undefined) {
      throw new RpcError(
        "not_found",
        `no backup ${request.backupId} in progress here (finished, idle for ` +
          `${BACKUP_IDLE_MS / 1000} s, or the node restarted); start the backup again`,
      );
    }
    if (request.sequence !== session.sequence) {
      this.#drop(request.backupId);
      throw new RpcError(
        "invalid",
        `backup ${request.backupId}: asked for chunk ${request.sequence}, the next is ` +
          `${session.sequence}; start the backup again`,
      );
    }
    clearTimeout(session.idleTimer);
    let next: IteratorResult<Uint8Array>;
    try {
      next = session.chunks.next();
    } catch (error) {
      this.#drop(request.backupId);
      throw error;
    }
    if (next.done) {
      log.info("backup {backupId} done: index {index}, {chunks} chunks, {bytes} bytes in {ms} ms", {
        backupId: request.backupId,
        index: session.index,
        chunks: session.chunkCount,
        bytes: session.bytes,
        ms: Math.round(performance.now() - session.startedAtMs),
      });
      this.#drop(request.backupId);
      return { chunk: null };
    }
    session.sequence += 1;
    session.chunkCount += 1;
    session.bytes += next.value.length;
    session.idleTimer = this.#idleTimer(request.backupId);
    return { chunk: next.value };
  }

  #idleTimer(backupId: string): ReturnType<typeof setTimeout> {
    return setTimeout(() => {
      log.warn("backup {backupId} dropped: not read from for {seconds} s", {
        backupId,
        seconds: BACKUP_IDLE_MS / 1000,
      });
      this.#drop(backupId);
    }, BACKUP_IDLE_MS);
  }

  #drop(backupId: string): void {
    const session = this.#sessions.get(backupId);
    if (session === undefined) return;
    this.#sessions.delete(backupId);
    clearTimeout(session.idleTimer);
    session.chunks.return(undefined);
    session.reader.close();
  }
}
