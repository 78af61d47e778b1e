/**
 * `BackupService`: a member's side of `cluster backup`.
 *
 * `cluster.backup_begin` first waits for a ReadIndex round (Raft thesis §6.4), so every
 * write acknowledged before the request is applied here; it then opens a read-only SQLite
 * connection inside one read transaction (`SqliteStorage.openSnapshotReader`). That
 * snapshot is the image: it stays the same while the node keeps applying and serving, and
 * its applied index (at least the ReadIndex) is the backup's index. The caller then takes
 * the chunks from `GET /backup?id=…` (`stream`), sealed with the key `begin` answered
 * (`backup_transfer.ts`); each is read from the snapshot when the HTTP body asks for it, so
 * the member holds about one chunk in memory, whatever the state's size.
 *
 * At most `BACKUPS_MAX` backups run at once, and one that is not read from for
 * `BACKUP_IDLE_MS` is dropped: an open snapshot keeps the WAL from being checkpointed.
 *
 * The same sessions carry Raft snapshots to followers (`openImage`, used by
 * `src/snapshot/`): the image, then a sealed digest of every chunk (`encodeImageDigest`),
 * on the same route; they count against `IMAGE_SENDS_MAX` instead. An image outlives a
 * broken stream until it is idle for its `idleMs`: a new GET with `from=N` resumes it at
 * chunk N, cut again from the same read, so the follower keeps what it verified.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { encodeMessagePack } from "../state_machine/msgpack_codec.ts";
import { getLogger } from "../log/logging.ts";
import type { RaftNode } from "../node/replication/raft_node.ts";
import { ClusterError } from "../node/replication/cluster_error.ts";
import type { KvStateMachine } from "../state_machine/kv_state_machine.ts";
import { STATE_SCHEMA_VERSION } from "../state_machine/sqlite_state_store.ts";
import type { SqliteStorage } from "../storage/sqlite_storage.ts";
import { RpcError, type RpcResponseOf, type RpcServer } from "../transport/rpc.ts";
import {
  chunkDigestOf,
  type CursorChunk,
  IMAGE_START,
  imageChunksFrom,
  type ImageCursor,
  imageDigestOf,
  type ImagePosition,
  imagePosition,
} from "./backup_image.ts";
import { assert } from "../util/assert.ts";
import { BACKUP_BEGIN_RPC } from "./backup_rpcs.ts";
import { importTransferKey, newTransferKey, sealFrame } from "./backup_transfer.ts";

const log = getLogger(["blixard", "backup"]);

/** Backups a member serves at once. */
export const BACKUPS_MAX = 2;
/** A backup not read from for this long is dropped. */
export const BACKUP_IDLE_MS = 30_000;
/** Snapshot images (`openImage`) a member serves at once: one per follower that needs one. */
export const IMAGE_SENDS_MAX = 8;

/** An image opened by `openImage`: its one-time id, its transfer key, where it stands. */
export interface OpenedImage {
  id: string;
  key: Uint8Array;
  position: ImagePosition;
}

/** How `openImage` serves an image. */
export interface OpenImageOptions {
  chunkBytes: number;
  /** Dropped when not read from for this long. */
  idleMs: number;
  /**
   * Called when a stream of it ends: `true` after the last chunk left, `false` when it
   * broke (the image may still be resumed) or was dropped.
   */
  onEnd(ok: boolean): void;
}

/** Whether an image is being read (`streaming`), awaits a GET (`waiting`), or is gone. */
export type ImageState = "streaming" | "waiting" | null;

/**
 * The chunk after the last image chunk of an `openImage` stream: the SHA-256 of the
 * SHA-256s of every image chunk in order (`imageDigestOf`), a MessagePack map (image chunks
 * are arrays). A digest of digests, so that a receiver that resumes needs only the digests
 * of the chunks it kept, not their bytes.
 */
export function encodeImageDigest(sha256: Uint8Array): Uint8Array {
  return encodeMessagePack({ sha256 });
}

/** An image's chunks as they were first cut, so that a resumed stream cuts them again. */
interface ImageRecord {
  /** Where chunk `n` (from 1) starts: `starts[n - 1]`. */
  starts: ImageCursor[];
  /** The SHA-256 of chunk `n`: `digests[n - 1]`. */
  digests: Uint8Array[];
  idleMs: number;
  onEnd(ok: boolean): void;
}

interface Session {
  reader: DatabaseSync;
  chunks: Generator<CursorChunk>;
  chunkBytes: number;
  key: CryptoKey;
  /** Whether its stream is handed out: a backup id is good for one GET at a time. */
  streaming: boolean;
  idleTimer: ReturnType<typeof setTimeout>;
  index: number;
  startedAtMs: number;
  chunkCount: number;
  bytes: number;
  /** Set for `openImage` sessions. */
  image: ImageRecord | null;
}

/** What the service needs from the node. */
export interface BackupServiceOptions {
  nodeId: number;
  storage: SqliteStorage;
  stateMachine: KvStateMachine;
  raft: Pick<RaftNode, "read">;
}

/** Serves `cluster.backup_begin`, and the chunks of each backup to `GET /backup`. */
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
    this.#checkCapacity();
    const { raft, stateMachine, storage, nodeId } = this.#options;
    let readIndex: number;
    try {
      readIndex = await raft.read(() => stateMachine.appliedIndex(), { signal });
    } catch (error) {
      if (error instanceof ClusterError) throw new RpcError(error.code, error.message);
      throw error;
    }
    if (this.#closed) throw new RpcError("stopping", "the node is stopping");
    // Again: other backups may have begun during the ReadIndex round.
    this.#checkCapacity();
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
    const { id: backupId, key } = await this.#open(reader, request.chunkBytes, null);
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
      key,
    };
  }

  /**
   * Opens the image as applied now (a consistent read) for a snapshot transfer, served by
   * `stream` like a backup, followed by its digest. Throws `RpcError("overloaded")` when
   * `IMAGE_SENDS_MAX` are open.
   */
  async openImage(options: OpenImageOptions): Promise<OpenedImage> {
    const images = [...this.#sessions.values()].filter((session) => session.image !== null);
    if (this.#closed) throw new RpcError("stopping", "the node is stopping");
    if (images.length >= IMAGE_SENDS_MAX) {
      throw new RpcError("overloaded", `${IMAGE_SENDS_MAX} snapshot transfers are in progress`);
    }
    const reader = this.#options.storage.openSnapshotReader();
    const position = imagePosition(reader);
    const image: ImageRecord = {
      starts: [IMAGE_START],
      digests: [],
      idleMs: options.idleMs,
      onEnd: options.onEnd,
    };
    const { id, key } = await this.#open(reader, options.chunkBytes, image);
    return { id, key, position };
  }

  /** Where image `id` stands (`openImage`). */
  imageState(id: string): ImageState {
    const session = this.#sessions.get(id);
    if (session?.image == null) return null;
    return session.streaming ? "streaming" : "waiting";
  }

  /** Drops image `id` now, if it is still open; its `onEnd(false)` is called. */
  dropImage(id: string): void {
    if (this.#sessions.get(id)?.image != null) this.#drop(id);
  }

  async #open(
    reader: DatabaseSync,
    chunkBytes: number,
    image: Session["image"],
  ): Promise<{ id: string; key: Uint8Array }> {
    const id = crypto.randomUUID();
    const key = newTransferKey();
    let cryptoKey: CryptoKey;
    try {
      cryptoKey = await importTransferKey(key);
    } catch (error) {
      reader.close();
      throw error;
    }
    this.#sessions.set(id, {
      reader,
      chunks: imageChunksFrom(reader, { chunkBytes, from: IMAGE_START }),
      chunkBytes,
      key: cryptoKey,
      streaming: false,
      idleTimer: this.#idleTimer(id, image?.idleMs ?? BACKUP_IDLE_MS),
      index: imagePosition(reader).index,
      startedAtMs: performance.now(),
      chunkCount: 0,
      bytes: 0,
      image,
    });
    return { id, key };
  }

  /**
   * The sealed chunks of backup `backupId` from chunk `from` (1 is the first) as an HTTP
   * body, read as it is pulled; `null` when there is no such backup, its stream is taken,
   * or it cannot start at `from` (a backup only from 1; an image from any chunk up to the
   * one after the last it has cut, once its previous stream broke).
   */
  stream(backupId: string, from = 1): ReadableStream<Uint8Array> | null {
    const session = this.#sessions.get(backupId);
    if (session === undefined || session.streaming) return null;
    const image = session.image;
    if (!Number.isSafeInteger(from) || from < 1) return null;
    if (image === null ? from !== 1 : from > image.starts.length) return null;
    if (image !== null) {
      // Cut from where chunk `from` starts, in the same read (a resumed stream cuts again).
      session.chunks.return(undefined);
      session.chunks = imageChunksFrom(session.reader, {
        chunkBytes: session.chunkBytes,
        from: image.starts[from - 1]!,
      });
    }
    session.streaming = true;
    const idleMs = image?.idleMs ?? BACKUP_IDLE_MS;
    let sequence = from;
    let digestSent = false;
    // Set when the reader goes away: a pull still sealing then leaves the image as it is.
    let cancelled = false;
    // The chunk cut while the one before it is sealed (which runs off the main thread).
    let ahead: IteratorResult<CursorChunk> | null = null;
    const cut = (chunkSequence: number): IteratorResult<CursorChunk> => {
      const next = session.chunks.next();
      if (!next.done && image !== null) this.#record(image, chunkSequence, next.value);
      return next;
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        clearTimeout(session.idleTimer);
        if (!this.#sessions.has(backupId)) {
          controller.error(new Error(`backup ${backupId} was dropped`));
          return;
        }
        try {
          const next = ahead ?? cut(sequence);
          ahead = null;
          if (next.done && image !== null && !digestSent) {
            // The image's own checksum, sealed like its chunks, before the end marker.
            digestSent = true;
            const digest = encodeImageDigest(imageDigestOf(image.digests));
            const sealed = await sealFrame(session.key, sequence++, digest);
            if (cancelled) return;
            controller.enqueue(sealed);
            session.idleTimer = this.#idleTimer(backupId, idleMs);
            return;
          }
          const chunk = next.done ? new Uint8Array(0) : next.value.chunk;
          const sealing = sealFrame(session.key, sequence, chunk);
          if (!next.done) ahead = cut(sequence + 1);
          const sealed = await sealing;
          if (cancelled) return;
          controller.enqueue(sealed);
          sequence += 1;
          session.idleTimer = this.#idleTimer(backupId, idleMs);
          if (!next.done) {
            session.chunkCount += 1;
            session.bytes += chunk.length;
            return;
          }
          this.#finished(backupId, session);
          controller.close();
        } catch (error) {
          if (cancelled) return;
          this.#drop(backupId);
          controller.error(error);
        }
      },
      cancel: () => {
        cancelled = true;
        this.#broken(backupId, session);
      },
    }, { highWaterMark: 2 });
  }

  /**
   * Notes chunk `sequence` of `image` as cut: its digest and where the next starts, the
   * first time; a chunk cut again (a resumed stream) must be the same bytes, since its
   * nonce is its sequence number and AES-GCM must never seal two texts under one nonce.
   */
  #record(image: ImageRecord, sequence: number, { chunk, next }: CursorChunk): void {
    const digest = chunkDigestOf(chunk);
    const known = image.digests[sequence - 1];
    if (known !== undefined) {
      if (!known.every((byte, i) => byte === digest[i])) {
        throw new Error(`chunk ${sequence} of the image came out different when cut again`);
      }
      return;
    }
    assert(sequence === image.digests.length + 1, "an image's chunks are cut in order");
    image.digests.push(digest);
    image.starts.push(next);
  }

  /**
   * A stream ended before its end: a backup is dropped; an image waits for a GET that
   * resumes it, until it is idle for its `idleMs`.
   */
  #broken(backupId: string, session: Session): void {
    if (session.image === null || !this.#sessions.has(backupId)) {
      this.#drop(backupId);
      return;
    }
    session.streaming = false;
    clearTimeout(session.idleTimer);
    session.idleTimer = this.#idleTimer(backupId, session.image.idleMs);
    session.image.onEnd(false);
  }

  #checkCapacity(): void {
    const backups = [...this.#sessions.values()].filter((session) => session.image === null);
    if (backups.length >= BACKUPS_MAX) {
      throw new RpcError("overloaded", `${BACKUPS_MAX} backups are in progress; retry later`);
    }
  }

  #finished(backupId: string, session: Session): void {
    if (session.image !== null) {
      this.#sessions.delete(backupId);
      session.image.onEnd(true);
      session.image = null;
      this.#drop(backupId, session);
      return;
    }
    log.info("backup {backupId} done: index {index}, {chunks} chunks, {bytes} bytes in {ms} ms", {
      backupId,
      index: session.index,
      chunks: session.chunkCount,
      bytes: session.bytes,
      ms: Math.round(performance.now() - session.startedAtMs),
    });
    this.#drop(backupId);
  }

  #idleTimer(backupId: string, idleMs: number): ReturnType<typeof setTimeout> {
    return setTimeout(() => {
      log.warn("backup {backupId} dropped: not read from for {seconds} s", {
        backupId,
        seconds: idleMs / 1000,
      });
      this.#drop(backupId);
    }, idleMs);
  }

  #drop(backupId: string, ended?: Session): void {
    const session = ended ?? this.#sessions.get(backupId);
    if (session === undefined) return;
    this.#sessions.delete(backupId);
    clearTimeout(session.idleTimer);
    session.chunks.return(undefined);
    session.reader.close();
    session.image?.onEnd(false);
  }
}
