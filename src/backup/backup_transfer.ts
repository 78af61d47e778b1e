/**
 * How a backup's chunks travel from the member to `cluster backup`: over the member's HTTP
 * port (`GET /backup?id=…`), each chunk sealed with AES-256-GCM under a key that only the
 * caller of `cluster.backup_begin` received, over the authenticated and encrypted Iroh
 * connection (and, with a cluster secret, past the secret gate).
 *
 * Why not over `blixard/rpc/1` itself: the Iroh binding moves bytes as `number[]`, about
 * 2 MB/s here (a 45 MB state took over 20 s), while the HTTP server streams natively.
 * Sealing keeps what the P2P path gives: nobody on the network reads the state, and a
 * changed, dropped, reordered or cut chunk fails to open. Each chunk's nonce is its number
 * (from 1), and the stream ends with a sealed empty chunk, so a cut stream is told apart
 * from a finished one. The backup id in the URL is a capability: a GET takes the stream
 * (a snapshot image's may be taken again after a break, `from=N` resuming at chunk N, under
 * the same key and the same nonces for the same chunks); someone who only sees the URL can
 * at worst make that transfer fail.
 *
 * Frame on the wire: sealed length (u32, big-endian) | sealed bytes.
 *
 * @module
 */

/** Bytes of the transfer key (AES-256). */
export const TRANSFER_KEY_BYTES = 32;
const TAG_BYTES = 16;
/** Largest sealed frame a reader accepts: bounds what it buffers for one length field. */
export const SEALED_FRAME_BYTES_MAX = 4 * 1024 * 1024;

/** A new random transfer key, raw. */
export function newTransferKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(TRANSFER_KEY_BYTES));
}

/** The AES-GCM key of `raw`. */
export function importTransferKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

function nonceOf(sequence: number): Uint8Array<ArrayBuffer> {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(sequence));
  return nonce;
}

/** The frame of chunk `sequence` (an empty `chunk` marks the end). */
export async function sealFrame(
  key: CryptoKey,
  sequence: number,
  chunk: Uint8Array,
): Promise<Uint8Array> {
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonceOf(sequence) },
      key,
      chunk as Uint8Array<ArrayBuffer>,
    ),
  );
  const frame = new Uint8Array(4 + sealed.length);
  new DataView(frame.buffer).setUint32(0, sealed.length);
  frame.set(sealed, 4);
  return frame;
}

/** Raised when the transfer stream is cut, altered, or not one. */
export class TransferError extends Error {
  override name = "TransferError";
}

/**
 * The chunks sealed in `body`, opened and in order; ends after the sealed end marker, and
 * throws `TransferError` when the stream ends before it or anything fails to open. A
 * stream resumed at chunk `first` (`GET /backup?…&from=N`) starts at that sequence number.
 */
export async function* openFrames(
  body: ReadableStream<Uint8Array>,
  key: CryptoKey,
  first = 1,
): AsyncGenerator<Uint8Array> {
  const input = new StreamInput(body);
  try {
    for (let sequence = first;; sequence += 1) {
      const header = await input.read(4);
      const length = header === null ? -1 : new DataView(header.buffer).getUint32(0);
      if (length < TAG_BYTES || length > SEALED_FRAME_BYTES_MAX) {
        throw new TransferError(
          header === null
            ? `the member's stream ended before chunk ${sequence}`
            : `the member's stream has a frame of ${length} bytes`,
        );
      }
      const sealed = await input.read(length);
      if (sealed === null) {
        throw new TransferError(`the member's stream ended inside chunk ${sequence}`);
      }
      let chunk: Uint8Array;
      try {
        chunk = new Uint8Array(
          await crypto.subtle.decrypt(
            { name: "AES-GCM", iv: nonceOf(sequence) },
            key,
            sealed as Uint8Array<ArrayBuffer>,
          ),
        );
      } catch {
        throw new TransferError(`chunk ${sequence} of the member's stream does not open`);
      }
      if (chunk.length === 0) break;
      yield chunk;
    }
    if (await input.read(1) !== null) {
      throw new TransferError("the member's stream goes on after its end marker");
    }
  } finally {
    await input.cancel();
  }
}

/**
 * GETs `url` (a member's `/backup?id=…`, with `from=first` to resume) and opens its sealed
 * chunks with `key`, numbered from `first` (default 1). Aborted
 * when the member sends nothing for `idleMs`, not after a fixed total: a large state takes
 * as long as it takes. Throws `TransferError` when the member cannot be reached or does
 * not answer 200 (the message names the URL's origin); errors while reading come from
 * `openFrames`.
 */
export async function fetchSealedChunks(
  url: URL,
  key: Uint8Array,
  options: { idleMs: number; signal?: AbortSignal; first?: number },
): Promise<AsyncGenerator<Uint8Array>> {
  const idle = new AbortController();
  const signal = options.signal === undefined
    ? idle.signal
    : AbortSignal.any([idle.signal, options.signal]);
  let timer = setTimeout(() => idle.abort(new Error("no data")), options.idleMs);
  const response = await fetch(url, { signal }).catch((error) => {
    clearTimeout(timer);
    const reason = error instanceof Error ? error.message : String(error);
    throw new TransferError(`GET ${url.origin}${url.pathname}: ${reason}`);
  });
  if (!response.ok || response.body === null) {
    clearTimeout(timer);
    await response.body?.cancel();
    throw new TransferError(
      `GET ${url.origin}${url.pathname} answered ${response.status}: start the transfer again`,
    );
  }
  const frames = openFrames(response.body, await importTransferKey(key), options.first);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of frames) {
        clearTimeout(timer);
        yield chunk;
        timer = setTimeout(() => idle.abort(new Error("no data")), options.idleMs);
      }
    } finally {
      clearTimeout(timer);
    }
  }
  return chunks();
}

/**
 * Exact reads from a byte stream. A byte stream (an HTTP body) is read with a BYOB reader
 * straight into the buffer of the read, where a default reader hands out a new piece of
 * about 64 KiB each time that then had to be copied: a third of the receiver's CPU time in
 * a 45 MB snapshot. Other streams (tests') are read piece by piece.
 */
class StreamInput {
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | null;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #done = false;

  constructor(body: ReadableStream<Uint8Array>) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream.
    }
    this.#byob = byob;
    this.#reader = byob === null ? body.getReader() : null;
  }

  /** Exactly `length` bytes, or `null` when the stream ends first. */
  async read(length: number): Promise<Uint8Array | null> {
    return this.#byob === null ? await this.#readPieces(length) : await this.#readInto(length);
  }

  async #readInto(length: number): Promise<Uint8Array | null> {
    let buffer = new Uint8Array(length);
    let filled = 0;
    while (filled < length && !this.#done) {
      const { value, done } = await this.#byob!.read(buffer.subarray(filled));
      if (value !== undefined) {
        // The read took the buffer over and hands it back in `value`.
        buffer = new Uint8Array(value.buffer, 0, length);
        filled += value.byteLength;
      }
      if (done) this.#done = true;
    }
    return filled < length ? null : buffer;
  }

  async #readPieces(length: number): Promise<Uint8Array | null> {
    while (this.#pendingBytes < length && !this.#done) {
      const { value, done } = await this.#reader!.read();
      if (done) this.#done = true;
      else if (value.length > 0) {
        this.#pending.push(value);
        this.#pendingBytes += value.length;
      }
    }
    if (this.#pendingBytes < length) return null;
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const first = this.#pending[0]!;
      const take = Math.min(first.length, length - filled);
      out.set(first.subarray(0, take), filled);
      filled += take;
      if (take === first.length) this.#pending.shift();
      else this.#pending[0] = first.subarray(take);
    }
    this.#pendingBytes -= length;
    return out;
  }

  async cancel(): Promise<void> {
    await (this.#byob ?? this.#reader)!.cancel().catch(() => {});
  }
}
