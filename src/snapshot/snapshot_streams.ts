/**
 * `SnapshotStreams`: a node's snapshots, streamed in chunks from a consistent read of its
 * state tables instead of built whole into one Raft message (`docs/decisions.md`,
 * "Streaming snapshots").
 *
 * Sending (the leader): the core's `InstallSnapshot` says a follower needs the state. The
 * node opens the image as applied now (`BackupService.openImage`: one SQLite read
 * transaction, chunks read as they are pulled, then a SHA-256 of them all) and sends the
 * follower, on the Raft link, the `InstallSnapshot` with that image's position as metadata
 * and an offer as data (`snapshot_offer.ts`). The follower fetches the sealed chunks from
 * the leader's HTTP port, like `cluster backup`; the outcome is reported to the core. One
 * transfer per follower at a time: the core's retries while one runs are absorbed.
 *
 * Receiving (the follower): chunks land in staging tables (`snapshot_staging.ts`), each in
 * its own small transaction between Ready passes, so heartbeats and clients keep being
 * served. Once the digest matches and the staged state row matches the metadata, the
 * message is stepped into the core with a staged reference as data; the Ready loop then
 * switches the state over inside the transaction that records the snapshot. A transfer
 * that breaks is dropped with its staging; the leader offers again. Memory on both sides is
 * a chunk or two, whatever the state's size.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { BackupService } from "../backup/backup_service.ts";
import { fetchSealedChunks, TransferError } from "../backup/backup_transfer.ts";
import { getLogger } from "../log/logging.ts";
import type { InstallSnapshot, Message, NodeId, Snapshot } from "../raft/types.ts";
import { decodeMessagePack } from "../state_machine/msgpack_codec.ts";
import type { SqliteStorage } from "../storage/sqlite_storage.ts";
import type { SnapshotTransport } from "../node/replication/raft_node.ts";
import { assert } from "../util/assert.ts";
import {
  decodeSnapshotOffer,
  decodeStagedReference,
  encodeSnapshotOffer,
  encodeStagedReference,
  type SnapshotOffer,
} from "./snapshot_offer.ts";
import {
  createStaging,
  discardStaging,
  installStaged,
  stageChunk,
  stagedPosition,
} from "./snapshot_staging.ts";

const log = getLogger(["blixard", "snapshot"]);

/** Bytes of row data per chunk (`BLIXARD_SNAPSHOT_CHUNK_BYTES` lowers it for tests). */
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1024 * 1024;
/** A transfer that moves no chunk for this long is given up, on both sides. */
export const SNAPSHOT_IDLE_MS = 10_000;

/** What the streams need from the node. */
export interface SnapshotStreamsOptions {
  storage: SqliteStorage;
  /** Opens images (the node's `BackupService`). */
  images: Pick<BackupService, "openImage">;
  /** Sends on the Raft link, bypassing the node (the offer is the message itself). */
  send(messages: Message[]): void;
  /** Hands a message to the core (a verified staged snapshot). */
  step(message: Message): void;
  /** Tells the core how a transfer to `nodeId` ended. */
  report(nodeId: NodeId, ok: boolean): void;
  /** This node's HTTP URLs (`http://host:port/`), where followers fetch its images. */
  httpUrls(): string[];
  chunkBytes?: number;
  idleMs?: number;
  /** Test seam: the sealed chunks of `url`; `fetchSealedChunks` by default. */
  fetchChunks?: (url: URL, key: Uint8Array, idleMs: number) => Promise<AsyncIterable<Uint8Array>>;
}

interface Receiving {
  imageId: string;
  from: NodeId;
  term: number;
  abort: AbortController;
}

/** Sends and receives one node's snapshots as streams of chunks. */
export class SnapshotStreams implements SnapshotTransport {
  readonly #options: SnapshotStreamsOptions;
  readonly #chunkBytes: number;
  readonly #idleMs: number;
  /** Followers with a transfer running. */
  readonly #sending = new Set<NodeId>();
  #receiving: Receiving | null = null;
  /** The image staged whole and verified, awaiting the Ready that installs it. */
  #staged: string | null = null;
  #closed = false;
  /** Counters for tests and logs. */
  readonly counters = { sent: 0, sendFailures: 0, received: 0, receiveFailures: 0 };

  /** Drops whatever a previous run staged: a half-received image is never used. */
  constructor(options: SnapshotStreamsOptions) {
    this.#options = options;
    this.#chunkBytes = options.chunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT;
    this.#idleMs = options.idleMs ?? SNAPSHOT_IDLE_MS;
    discardStaging(options.storage);
  }

  /** Stops every transfer (the node is stopping). */
  close(): void {
    this.#closed = true;
    this.#receiving?.abort.abort(new Error("the node is stopping"));
  }

  /** The core asks for a snapshot to `message.to` (`SnapshotTransport`). */
  send(message: InstallSnapshot): void {
    if (this.#closed || this.#sending.has(message.to)) return;
    this.#sending.add(message.to);
    let ended = false;
    const end = (ok: boolean) => {
      if (ended) return;
      ended = true;
      this.#sending.delete(message.to);
      if (ok) this.counters.sent += 1;
      else this.counters.sendFailures += 1;
      this.#options.report(message.to, ok);
    };
    this.#options.images.openImage({
      chunkBytes: this.#chunkBytes,
      idleMs: this.#idleMs,
      onEnd: end,
    }).then(({ id, key, position }) => {
      const { index, term, confState } = position;
      log.info("snapshot at index {index} offered to node {to} (image {id})", {
        index,
        to: message.to,
        id,
      });
      const data = encodeSnapshotOffer({ id, key, urls: this.#options.httpUrls() });
      this.#options.send([{
        ...message,
        snapshot: { metadata: { index, term, confState }, data },
      }]);
    }, (error) => {
      log.warn("cannot open a snapshot for node {to}: {reason}", {
        to: message.to,
        reason: error instanceof Error ? error.message : String(error),
      });
      end(false);
    });
  }

  /**
   * Installs a staged image inside the Ready's transaction (`SnapshotTransport`); `false`
   * for any other data (a whole image), which the state machine installs.
   */
  install(snapshot: Snapshot): boolean {
    const imageId = decodeStagedReference(snapshot.data);
    if (imageId === null) return false;
    assert(this.#staged === imageId, "a staged reference names the image staged here", {
      detail: () => `reference ${imageId}, staged ${this.#staged}`,
    });
    installStaged(this.#options.storage);
    this.#staged = null;
    log.info("snapshot at index {index} installed", { index: snapshot.metadata.index });
    return true;
  }

  /**
   * A Ready run ended: a staged image stepped before it was installed in it, or the core
   * did not want it (older than its state, or from a deposed leader); drop it then.
   */
  readyHandled(): void {
    if (this.#staged === null || this.#receiving !== null) return;
    this.#staged = null;
    discardStaging(this.#options.storage);
  }

  /**
   * A message from the network: `true` when it was an `InstallSnapshot` these streams take
   * (an offer, fetched now, or a staged reference, which never comes from the network and
   * is dropped); `false` when the core should step it.
   */
  receive(message: Message): boolean {
    if (message.type !== "InstallSnapshot") return false;
    if (decodeStagedReference(message.snapshot.data) !== null) return true;
    const offer = decodeSnapshotOffer(message.snapshot.data);
    if (offer === null) return false;
    // A staged image awaits its Ready (`readyHandled`): its tables must stay as they are.
    if (this.#closed || this.#staged !== null) return true;
    const current = this.#receiving;
    if (current !== null) {
      // The leader's retry of the transfer under way: let it finish.
      if (current.from === message.from && current.term >= message.term) return true;
      current.abort.abort(new Error(`node ${message.from} offered a newer snapshot`));
    }
    const receiving = {
      imageId: offer.id,
      from: message.from,
      term: message.term,
      abort: new AbortController(),
    };
    this.#receiving = receiving;
    this.#fetch(message, offer, receiving.abort.signal).then(
      () => this.counters.received += 1,
      (error) => {
        this.counters.receiveFailures += 1;
        if (this.#staged === offer.id) this.#staged = null;
        log.warn("snapshot from node {from} (image {id}) given up: {reason}", {
          from: message.from,
          id: offer.id,
          reason: error instanceof Error ? error.message : String(error),
        });
      },
    ).finally(() => {
      if (this.#receiving === receiving) this.#receiving = null;
    });
    return true;
  }

  async #fetch(message: InstallSnapshot, offer: SnapshotOffer, signal: AbortSignal): Promise<void> {
    const { storage } = this.#options;
    const { metadata } = message.snapshot;
    // Earlier staging (given up, or never installed) goes: the tables hold one image.
    this.#staged = null;
    createStaging(storage);
    log.info("receiving a snapshot at index {index} from node {from} (image {id})", {
      index: metadata.index,
      from: message.from,
      id: offer.id,
    });
    const startedMs = performance.now();
    const chunks = await this.#openChunks(offer, signal);
    const digest = createHash("sha256");
    let verified = false;
    let count = 0;
    let bytes = 0;
    for await (const chunk of chunks) {
      if (signal.aborted) throw signal.reason;
      if (verified) throw new TransferError("the image goes on after its digest");
      const expected = imageDigestOf(chunk);
      if (expected !== null) {
        const actual = new Uint8Array(digest.digest());
        if (!bytesEqual(actual, expected)) {
          throw new TransferError("the image's SHA-256 does not match its chunks");
        }
        verified = true;
        continue;
      }
      digest.update(chunk);
      stageChunk(storage, chunk);
      count += 1;
      bytes += chunk.length;
    }
    if (!verified) throw new TransferError("the image ended without its digest");
    const staged = stagedPosition(storage);
    if (
      staged.index !== metadata.index ||
      JSON.stringify(staged.confState) !== JSON.stringify(metadata.confState)
    ) {
      throw new TransferError(
        `the image is at index ${staged.index}, its message says ${metadata.index}`,
      );
    }
    if (signal.aborted || this.#closed) throw signal.reason ?? new Error("stopping");
    this.#staged = offer.id;
    log.info(
      "snapshot at index {index} received: {chunks} chunks, {bytes} bytes in {ms} ms",
      {
        index: metadata.index,
        chunks: count,
        bytes,
        ms: Math.round(performance.now() - startedMs),
      },
    );
    this.#options.step({
      ...message,
      snapshot: { metadata, data: encodeStagedReference(offer.id) },
    });
  }

  /** The sealed chunks of `offer`, from the first of its URLs that answers. */
  async #openChunks(offer: SnapshotOffer, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const fetchChunks = this.#options.fetchChunks ??
      ((url: URL, key: Uint8Array, idleMs: number) =>
        fetchSealedChunks(url, key, { idleMs, signal }));
    let failure: unknown = new TransferError("the offer lists no URL");
    for (const base of offer.urls) {
      const url = new URL("/backup", base);
      url.searchParams.set("id", offer.id);
      try {
        return await fetchChunks(url, offer.key, this.#idleMs);
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }
}

/** The digest an image's last chunk carries (`encodeImageDigest`), or `null` for a data chunk. */
function imageDigestOf(chunk: Uint8Array): Uint8Array | null {
  // Image chunks are arrays, and rarely this small; the digest is a map of 32 bytes.
  if (chunk.length > 64) return null;
  const value = decodeMessagePack(chunk) as { sha256?: unknown } | null;
  const sha256 = Array.isArray(value) ? undefined : value?.sha256;
  return sha256 instanceof Uint8Array && sha256.length === 32 ? sha256 : null;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
