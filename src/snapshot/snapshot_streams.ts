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

import type { BackupService } from "../backup/backup_service.ts";
import type { ImagePosition } from "../backup/backup_image.ts";
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
  stagedDigest,
  stagedImage,
  stagedPosition,
} from "./snapshot_staging.ts";

const log = getLogger(["blixard", "snapshot"]);

/** Bytes of row data per chunk (`BLIXARD_SNAPSHOT_CHUNK_BYTES` lowers it for tests). */
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1024 * 1024;
/** A transfer that moves no chunk for this long is given up, on both sides. */
export const SNAPSHOT_IDLE_MS = 10_000;
/** GETs in a row that resume a broken stream without a chunk landing, before giving up. */
export const RESUME_ATTEMPTS_MAX = 3;
/** Pause before a GET that resumes a broken stream. */
const RESUME_PAUSE_MS = 200;

/** What the streams need from the node. */
export interface SnapshotStreamsOptions {
  storage: SqliteStorage;
  /** Opens images (the node's `BackupService`). */
  images: Pick<BackupService, "openImage" | "imageState" | "dropImage">;
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
  /**
   * Test seam: the sealed chunks of `url`, numbered from `first` (its `from`);
   * `fetchSealedChunks` by default.
   */
  fetchChunks?: (
    url: URL,
    key: Uint8Array,
    options: { idleMs: number; first: number; signal: AbortSignal },
  ) => Promise<AsyncIterable<Uint8Array>>;
}

/** An image offered to a follower, kept until it ends, so that a retry offers it again. */
interface Offered {
  id: string;
  key: Uint8Array;
  position: ImagePosition;
  /** Set once the follower read it whole: the core's retries are absorbed for a while. */
  deliveredAtMs: number | null;
}

/**
 * The image is wrong (its digest, its end, its position): what was staged of it is dropped,
 * as after a chunk that does not load. Only a broken transfer (`TransferError`) keeps it.
 */
class ImageRefused extends Error {
  override name = "ImageRefused";
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
  /** The image offered to each follower, until it ends. */
  readonly #offered = new Map<NodeId, Offered>();
  /** Followers whose image is being opened. */
  readonly #opening = new Set<NodeId>();
  #receiving: Receiving | null = null;
  /** The image staged whole and verified, awaiting the Ready that installs it. */
  #staged: string | null = null;
  #closed = false;
  /** Counters for tests and logs. */
  readonly counters = {
    sent: 0,
    sendFailures: 0,
    received: 0,
    receiveFailures: 0,
    resumed: 0,
  };

  /**
   * Keeps what a previous run staged of an image, for the leader to offer again (the
   * transfer resumes); drops staging that cannot be resumed.
   */
  constructor(options: SnapshotStreamsOptions) {
    this.#options = options;
    this.#chunkBytes = options.chunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT;
    this.#idleMs = options.idleMs ?? SNAPSHOT_IDLE_MS;
    if (stagedImage(options.storage) === null) discardStaging(options.storage);
  }

  /** Stops every transfer (the node is stopping). */
  close(): void {
    this.#closed = true;
    this.#receiving?.abort.abort(new Error("the node is stopping"));
  }

  /**
   * The core asks for a snapshot to `message.to` (`SnapshotTransport`). While its image is
   * being read, or was read whole a moment ago, the request is absorbed; when its stream
   * broke, the same image is offered again (the follower resumes after what it staged);
   * otherwise a new image is opened.
   */
  send(message: InstallSnapshot): void {
    const { images } = this.#options;
    const to = message.to;
    if (this.#closed || this.#opening.has(to)) return;
    const offered = this.#offered.get(to);
    if (offered !== undefined) {
      const state = images.imageState(offered.id);
      if (offered.deliveredAtMs !== null) {
        // The follower installs it and answers; the core asked again before the answer.
        if (performance.now() - offered.deliveredAtMs < this.#idleMs) return;
      } else if (state === "streaming") {
        return;
      } else if (state === "waiting" && offered.position.index >= message.snapshot.metadata.index) {
        this.#offer(message, offered);
        return;
      }
      if (state !== null) images.dropImage(offered.id);
      this.#offered.delete(to);
    }
    this.#opening.add(to);
    let id: string | null = null;
    images.openImage({
      chunkBytes: this.#chunkBytes,
      idleMs: this.#idleMs,
      onEnd: (ok) => id !== null && this.#ended(to, id, ok),
    }).then((image) => {
      id = image.id;
      const next: Offered = { ...image, deliveredAtMs: null };
      this.#offered.set(to, next);
      this.#offer(message, next);
    }, (error) => {
      log.warn("cannot open a snapshot for node {to}: {reason}", {
        to,
        reason: error instanceof Error ? error.message : String(error),
      });
      this.counters.sendFailures += 1;
      this.#options.report(to, false);
    }).finally(() => this.#opening.delete(to));
  }

  #offer(message: InstallSnapshot, offered: Offered): void {
    const { index, term, confState } = offered.position;
    log.info("snapshot at index {index} offered to node {to} (image {id})", {
      index,
      to: message.to,
      id: offered.id,
    });
    const data = encodeSnapshotOffer({
      id: offered.id,
      key: offered.key,
      urls: this.#options.httpUrls(),
    });
    this.#options.send([{ ...message, snapshot: { metadata: { index, term, confState }, data } }]);
  }

  /** A stream of image `id` to `to` ended: read whole, or broken (it may resume), or dropped. */
  #ended(to: NodeId, id: string, ok: boolean): void {
    const offered = this.#offered.get(to);
    if (offered?.id !== id) return;
    if (ok) {
      offered.deliveredAtMs = performance.now();
      this.counters.sent += 1;
    } else {
      this.counters.sendFailures += 1;
      if (this.#options.images.imageState(id) === null) this.#offered.delete(to);
    }
    this.#options.report(to, ok);
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
        // What was staged of a refused image is worth nothing; a broken transfer's chunks
        // stay for the same image offered again.
        const broken = error instanceof TransferError || receiving.abort.signal.aborted;
        if (!broken) discardStaging(this.#options.storage);
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
    // Earlier staging (given up, or never installed) goes, unless it is of this image.
    this.#staged = null;
    const earlier = stagedImage(storage);
    let staged = earlier?.imageId === offer.id ? earlier.chunks : 0;
    if (staged === 0) createStaging(storage, offer.id);
    else this.counters.resumed += 1;
    log.info("receiving a snapshot at index {index} from node {from} (image {id}{resumed})", {
      index: metadata.index,
      from: message.from,
      id: offer.id,
      resumed: staged === 0 ? "" : `, resumed after chunk ${staged}`,
    });
    const startedMs = performance.now();
    let verified = false;
    let count = 0;
    let bytes = 0;
    let attempts = 0;
    while (!verified) {
      const before = staged;
      try {
        const chunks = await this.#openChunks(offer, signal, staged + 1);
        for await (const chunk of chunks) {
          if (signal.aborted) throw signal.reason;
          if (verified) throw new ImageRefused("the image goes on after its digest");
          const expected = sentDigestOf(chunk);
          if (expected !== null) {
            if (!bytesEqual(stagedDigest(storage), expected)) {
              throw new ImageRefused("the image's digest does not match its chunks");
            }
            verified = true;
            continue;
          }
          stageChunk(storage, staged + 1, chunk);
          staged += 1;
          count += 1;
          bytes += chunk.length;
        }
        if (!verified) throw new ImageRefused("the image ended without its digest");
      } catch (error) {
        if (!(error instanceof TransferError) || signal.aborted) throw error;
        // A cut or a stall: GET the rest, from the chunk after the last one staged.
        attempts = staged > before ? 1 : attempts + 1;
        if (attempts >= RESUME_ATTEMPTS_MAX) throw error;
        log.info("snapshot stream broken after chunk {staged} ({reason}): resuming", {
          staged,
          reason: error.message,
        });
        await pause(RESUME_PAUSE_MS, signal);
      }
    }
    const position = stagedPosition(storage);
    if (
      position.index !== metadata.index ||
      JSON.stringify(position.confState) !== JSON.stringify(metadata.confState)
    ) {
      throw new ImageRefused(
        `the image is at index ${position.index}, its message says ${metadata.index}`,
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

  /** The sealed chunks of `offer` from chunk `first`, from the first of its URLs that answers. */
  async #openChunks(
    offer: SnapshotOffer,
    signal: AbortSignal,
    first: number,
  ): Promise<AsyncIterable<Uint8Array>> {
    const fetchChunks = this.#options.fetchChunks ??
      ((
        url: URL,
        key: Uint8Array,
        options: { idleMs: number; first: number; signal: AbortSignal },
      ) => fetchSealedChunks(url, key, options));
    let failure: unknown = new TransferError("the offer lists no URL");
    for (const base of offer.urls) {
      const url = new URL("/backup", base);
      url.searchParams.set("id", offer.id);
      if (first > 1) url.searchParams.set("from", String(first));
      try {
        return await fetchChunks(url, offer.key, { idleMs: this.#idleMs, first, signal });
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }
}

/** Waits `ms`, or until `signal` aborts (then throws its reason). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The digest an image's last chunk carries (`encodeImageDigest`), or `null` for a data chunk. */
function sentDigestOf(chunk: Uint8Array): Uint8Array | null {
  // Image chunks are arrays, and rarely this small; the digest is a map of 32 bytes.
  if (chunk.length > 64) return null;
  const value = decodeMessagePack(chunk) as { sha256?: unknown } | null;
  const sha256 = Array.isArray(value) ? undefined : value?.sha256;
  return sha256 instanceof Uint8Array && sha256.length === 32 ? sha256 : null;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
