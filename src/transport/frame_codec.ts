/**
 * Framing for P2P streams (DESIGN.md section 5): each frame is a 4-byte big-endian length
 * prefix, then that many bytes of msgpack. The decoder refuses a frame longer than its
 * `frameBytesMax` as soon as it has read the prefix, before it allocates or buffers the
 * frame, so a peer cannot make this node reserve memory by announcing a huge frame.
 *
 * Binary values come back as plain `Uint8Array`s (not Node `Buffer`s), so that a value
 * compares equal to what was sent.
 *
 * @module
 */

import { Packr } from "msgpackr";
import { assert } from "../util/assert.ts";

/** Bytes in the length prefix. */
export const FRAME_HEADER_BYTES = 4;

/** Default largest payload of one frame: 16 MiB (DESIGN.md section 5). */
export const FRAME_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

/** The largest payload the 32-bit prefix can describe. */
const FRAME_BYTES_LIMIT = 0xffff_ffff;

/** Why a frame was refused. */
export type FrameErrorCode = "frame_too_large" | "truncated" | "malformed";

/** A frame that cannot be encoded or decoded; `code` says why. */
export class FrameError extends Error {
  override name = "FrameError";
  /** Why the frame was refused. */
  readonly code: FrameErrorCode;

  /** `cause` is the msgpack error, when there is one. */
  constructor(code: FrameErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Options shared by the encoder and the decoder. */
export interface FrameOptions {
  /** Largest payload in bytes; defaults to `FRAME_BYTES_MAX_DEFAULT`. */
  frameBytesMax?: number;
}

// Records (msgpackr's shared-structure extension) are off: every frame stands alone, and
// plain msgpack maps are what any other decoder understands.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

function frameBytesMaxOf(options: FrameOptions | undefined): number {
  const frameBytesMax = options?.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
  assert(
    Number.isInteger(frameBytesMax) && frameBytesMax >= 1 && frameBytesMax <= FRAME_BYTES_LIMIT,
    "1 <= frameBytesMax <= 2^32-1",
    { detail: () => `frameBytesMax=${frameBytesMax}` },
  );
  return frameBytesMax;
}

function encodePayload(value: unknown, frameBytesMax: number): Uint8Array {
  const payload: Uint8Array = packr.pack(value);
  if (payload.length > frameBytesMax) {
    throw new FrameError(
      "frame_too_large",
      `frame of ${payload.length} bytes exceeds the limit of ${frameBytesMax} bytes; ` +
        "send smaller messages",
    );
  }
  return payload;
}

/** Encodes one value as a frame. Throws `FrameError` when it exceeds `frameBytesMax`. */
export function encodeFrame(value: unknown, options?: FrameOptions): Uint8Array {
  return encodeFrames([value], options);
}

/**
 * Encodes several values into one buffer of consecutive frames, so that a batch crosses
 * the binding in a single write.
 */
export function encodeFrames(values: readonly unknown[], options?: FrameOptions): Uint8Array {
  const frameBytesMax = frameBytesMaxOf(options);
  const payloads = values.map((value) => encodePayload(value, frameBytesMax));
  const totalBytes = payloads.reduce(
    (sum, payload) => sum + FRAME_HEADER_BYTES + payload.length,
    0,
  );
  const buffer = new Uint8Array(totalBytes);
  const view = new DataView(buffer.buffer);
  let offset = 0;
  for (const payload of payloads) {
    view.setUint32(offset, payload.length, false);
    buffer.set(payload, offset + FRAME_HEADER_BYTES);
    offset += FRAME_HEADER_BYTES + payload.length;
  }
  assert(offset === totalBytes, "frames fill the buffer exactly");
  return buffer;
}

/**
 * Turns a byte stream, in chunks of any size, back into values. After it has thrown a
 * `FrameError` it refuses all further input: the stream is no longer in sync.
 *
 * Precondition: a chunk is never modified after `push`, because decoded binary values
 * are views into it (copying every payload would cost more than the decoding).
 */
export class FrameDecoder {
  readonly #frameBytesMax: number;
  #chunks: Uint8Array[] = [];
  #bufferedBytes = 0;
  /** Payload length of the frame being assembled, once its prefix has arrived. */
  #payloadBytes: number | null = null;
  #failed: FrameError | null = null;

  /** `frameBytesMax` bounds each payload (default 16 MiB). */
  constructor(options?: FrameOptions) {
    this.#frameBytesMax = frameBytesMaxOf(options);
  }

  /** Bytes received but not yet decoded: at most one partial frame. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Adds a chunk and returns every value it completes, in order. */
  push(chunk: Uint8Array): unknown[] {
    this.#throwIfFailed();
    if (chunk.length > 0) {
      // A Node Buffer would make msgpackr hand out Buffers; a plain view keeps values plain.
      this.#chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#bufferedBytes += chunk.length;
    }
    const values: unknown[] = [];
    for (;;) {
      const value = this.#next();
      if (value === NOT_YET) return values;
      values.push(value);
    }
  }

  /** Declares the end of the stream; throws `FrameError` when a frame was cut short. */
  finish(): void {
    this.#throwIfFailed();
    if (this.#bufferedBytes > 0) {
      this.#fail(
        new FrameError(
          "truncated",
          `stream ended inside a frame: ${this.#bufferedBytes} bytes of ` +
            (this.#payloadBytes === null
              ? "a 4-byte length prefix"
              : `a ${this.#payloadBytes}-byte frame`) +
            " received",
        ),
      );
    }
  }

  #next(): unknown {
    if (this.#payloadBytes === null) {
      if (this.#bufferedBytes < FRAME_HEADER_BYTES) return NOT_YET;
      const header = this.#take(FRAME_HEADER_BYTES);
      this.#payloadBytes = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES)
        .getUint32(0, false);
      this.#checkPayloadBytes(this.#payloadBytes);
    }
    if (this.#bufferedBytes < this.#payloadBytes) return NOT_YET;
    const payload = this.#take(this.#payloadBytes);
    this.#payloadBytes = null;
    try {
      return packr.unpack(payload);
    } catch (error) {
      this.#fail(
        new FrameError("malformed", `frame is not valid msgpack: ${error}`, { cause: error }),
      );
    }
  }

  #checkPayloadBytes(payloadBytes: number): void {
    if (payloadBytes > this.#frameBytesMax) {
      this.#fail(
        new FrameError(
          "frame_too_large",
          `frame of ${payloadBytes} bytes announced; the limit is ${this.#frameBytesMax} bytes`,
        ),
      );
    }
    if (payloadBytes === 0) {
      this.#fail(new FrameError("malformed", "empty frame: every msgpack value has ≥ 1 byte"));
    }
  }

  /** Removes `byteCount` bytes from the front; a view when they lie in one chunk. */
  #take(byteCount: number): Uint8Array {
    assert(byteCount <= this.#bufferedBytes, "take() only buffered bytes");
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= byteCount) {
      this.#consume(byteCount);
      return first.subarray(0, byteCount);
    }
    const taken = new Uint8Array(byteCount);
    let filled = 0;
    while (filled < byteCount) {
      const chunk = this.#chunks[0];
      assert(chunk !== undefined, "buffered bytes are in chunks");
      const part = chunk.subarray(0, byteCount - filled);
      taken.set(part, filled);
      filled += part.length;
      this.#consume(part.length);
    }
    return taken;
  }

  #consume(byteCount: number): void {
    const first = this.#chunks[0];
    assert(first !== undefined && first.length >= byteCount, "consume within the first chunk");
    if (first.length === byteCount) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(byteCount);
    this.#bufferedBytes -= byteCount;
  }

  #fail(error: FrameError): never {
    this.#failed = error;
    this.#chunks = [];
    this.#bufferedBytes = 0;
    throw error;
  }

  #throwIfFailed(): void {
    if (this.#failed !== null) throw this.#failed;
  }
}

const NOT_YET = Symbol("not yet");
