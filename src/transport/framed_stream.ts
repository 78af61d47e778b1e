/**
 * A bidirectional QUIC stream that carries frames (see `frame_codec.ts`) instead of bytes.
 *
 * What the binding's `RecvStream.read(limit)` does, found by trying it: it resolves with
 * up to `limit` bytes, with an empty array once the peer has finished the stream, and
 * rejects with `Reset(<code>)` when the peer reset it. The binding allocates `limit` bytes
 * for every read, so reads ask for a moderate chunk.
 *
 * Each half of a native stream sits behind a lock that a pending read or write holds until
 * it completes, so `reset()` cannot interrupt a read that is waiting for data: it is
 * queued behind it, and the caller is not kept waiting for it. Closing the connection ends
 * every pending read and write.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { encodeFrames, FRAME_HEADER_BYTES, FrameDecoder, FrameError } from "./frame_codec.ts";
import {
  describeIrohError,
  fromBindingBytes,
  type IrohRecvStream,
  type IrohSendStream,
  toBindingBytes,
} from "./iroh.ts";
import type { NativeCalls } from "./native_calls.ts";
import { TransportError } from "./transport_error.ts";

/** Application error codes sent with RESET_STREAM and STOP_SENDING. */
export const StreamErrorCode = {
  /** The sender gave up: its deadline passed or its caller cancelled. */
  cancelled: 0,
  /** A frame was oversized, truncated or not msgpack. */
  malformedFrame: 1,
  /** A message decoded but broke the protocol (its shape or its order). */
  protocolViolation: 2,
  /** The server gave up on the request at its deadline. */
  deadlineExceeded: 3,
  /** The server refused the stream: the caller holds as many as it may. */
  refused: 4,
} as const;

/** Bytes asked for per native read: large enough for many small frames, small to allocate. */
export const READ_CHUNK_BYTES = 64 * 1024;

/** Options of a {@linkcode FramedStream}. */
export interface FramedStreamOptions {
  /** Largest frame payload accepted or sent. */
  frameBytesMax: number;
  /** Names the stream in error messages, e.g. `"blixard/rpc/1 stream with 3f2a…"`. */
  description: string;
  /** Where its binding calls are tracked: its endpoint's, which waits for them on close. */
  nativeCalls: NativeCalls;
}

/**
 * Frames over one bidirectional stream. Sends are written in call order, one native write
 * per call; receives are served in order. Methods reject with `TransportError`.
 */
export class FramedStream {
  readonly #send: IrohSendStream;
  readonly #recv: IrohRecvStream;
  readonly #options: FramedStreamOptions;
  readonly #decoder: FrameDecoder;
  #received: unknown[] = [];
  #ended = false;
  #receiveFailure: TransportError | null = null;
  #sendTail: Promise<unknown> = Promise.resolve();
  /** Sends started or waiting; the next one starts at once only when this is 0. */
  #sendsPending = 0;
  #receiveTail: Promise<unknown> = Promise.resolve();
  #reset = false;
  /**
   * Callers waiting on a native read or write, freed at once when this side resets. Not a
   * shared "reset" promise raced against each operation: every race leaves a reaction on a
   * promise that never settles, which keeps each operation's result (a whole read chunk)
   * alive for the life of the stream. A Raft stream lives for hours.
   */
  readonly #resetWaiters = new Set<(error: TransportError) => void>();
  #resetError: TransportError | null = null;

  /** Wraps the two halves of a native bidirectional stream. */
  constructor(
    native: { send: IrohSendStream; recv: IrohRecvStream },
    options: FramedStreamOptions,
  ) {
    this.#send = native.send;
    this.#recv = native.recv;
    this.#options = options;
    this.#decoder = new FrameDecoder({ frameBytesMax: options.frameBytesMax });
  }

  /** Sends one value as one frame. */
  send(value: unknown): Promise<void> {
    return this.sendBatch([value]);
  }

  /**
   * Sends values as consecutive frames in a single native write. Rejects with `FrameError`
   * when a value's encoding exceeds `frameBytesMax`, and sends nothing then.
   */
  async sendBatch(values: readonly unknown[]): Promise<void> {
    // Encoding before the first await, not when the write's turn comes, keeps frames in
    // call order and reports an oversize value to this caller.
    const bytes = encodeFrames(values, { frameBytesMax: this.#options.frameBytesMax });
    await this.#afterSends(() => this.#native(this.#send.writeAll(toBindingBytes(bytes))));
  }

  /** Ends the sending half: the peer's reads return `null` after the frames sent so far. */
  finish(): Promise<void> {
    return this.#afterSends(() => this.#native(this.#send.finish()));
  }

  /**
   * Abandons the stream in both directions with `code` (see `StreamErrorCode`). Returns at
   * once: the native reset and stop run in the background and their errors are ignored.
   */
  reset(code: number): void {
    assert(Number.isInteger(code) && code >= 0, "stream error codes are non-negative integers");
    if (this.#reset) return;
    this.#reset = true;
    const error = new TransportError(
      "stream_reset",
      `${this.#options.description}: reset by this side with code ${code}`,
    );
    this.#receiveFailure ??= error;
    this.#resetError = error;
    for (const abandon of this.#resetWaiters) abandon(error);
    this.#resetWaiters.clear();
    this.#native(this.#send.reset(BigInt(code))).catch(() => {});
    this.#native(this.#recv.stop(BigInt(code))).catch(() => {});
  }

  /**
   * The next value, or `null` once the peer has finished the stream. A malformed frame
   * resets the stream with `StreamErrorCode.malformedFrame` and rejects.
   */
  receive(): Promise<unknown | null> {
    const next = this.#receiveTail.then(() => this.#receiveOne());
    this.#receiveTail = next.catch(() => {});
    return next;
  }

  /**
   * Every value left on the stream, in one native read to its end: for protocols whose
   * peer sends one frame and finishes (RPC), this saves a read per stream. The rest of
   * the stream may hold at most one frame's worth of bytes; more resets it and rejects
   * with `malformed_frame`, as a malformed frame does.
   */
  receiveToEnd(): Promise<unknown[]> {
    const next = this.#receiveTail.then(() => this.#receiveRest());
    this.#receiveTail = next.catch(() => {});
    return next;
  }

  async #receiveRest(): Promise<unknown[]> {
    const values = this.#received.splice(0);
    if (this.#receiveFailure !== null) throw this.#receiveFailure;
    if (this.#ended) return values;
    const bytesMax = this.#options.frameBytesMax + FRAME_HEADER_BYTES;
    let rest: number[];
    try {
      rest = await this.#unlessReset(this.#native(this.#recv.readToEnd(bytesMax)));
    } catch (error) {
      if (error instanceof TransportError) throw error;
      const tooLong = describeIrohError(error) === "TooLong";
      this.#receiveFailure = tooLong
        ? new TransportError(
          "malformed_frame",
          `${this.#options.description}: more than ${bytesMax} bytes before the end; stream reset`,
        )
        : this.#streamError(error);
      this.reset(tooLong ? StreamErrorCode.malformedFrame : StreamErrorCode.cancelled);
      throw this.#receiveFailure;
    }
    this.#decode(fromBindingBytes(rest));
    this.#decode(new Uint8Array(0));
    values.push(...this.#received.splice(0));
    if (this.#receiveFailure !== null) throw this.#receiveFailure;
    return values;
  }

  async #receiveOne(): Promise<unknown | null> {
    for (;;) {
      if (this.#received.length > 0) return this.#received.shift();
      if (this.#receiveFailure !== null) throw this.#receiveFailure;
      if (this.#ended) return null;
      this.#decode(await this.#readChunk());
    }
  }

  /** Decodes a chunk into `#received`; an empty chunk is the end of the stream. */
  #decode(chunk: Uint8Array): void {
    try {
      if (chunk.length === 0) {
        this.#ended = true;
        this.#decoder.finish();
      } else {
        this.#received.push(...this.#decoder.push(chunk));
      }
    } catch (error) {
      assert(error instanceof FrameError, "the decoder throws only FrameError");
      this.#receiveFailure = new TransportError(
        "malformed_frame",
        `${this.#options.description}: ${error.message}; stream reset`,
        { cause: error },
      );
      this.reset(StreamErrorCode.malformedFrame);
    }
  }

  /** A call into the binding, tracked until it settles (see `native_calls.ts` for why). */
  #native<T>(call: Promise<T>): Promise<T> {
    return this.#options.nativeCalls.track(call);
  }

  async #readChunk(): Promise<Uint8Array> {
    try {
      const read = this.#native(this.#recv.read(READ_CHUNK_BYTES));
      return fromBindingBytes(await this.#unlessReset(read));
    } catch (error) {
      if (error instanceof TransportError) throw error;
      this.#receiveFailure = this.#streamError(error);
      // The peer abandoned its half; abandon ours too, so that it is not left writing.
      this.reset(StreamErrorCode.cancelled);
      throw this.#receiveFailure;
    }
  }

  #afterSends(write: () => Promise<void>): Promise<void> {
    const run = async () => {
      try {
        await this.#unlessReset(write());
      } catch (error) {
        throw error instanceof TransportError ? error : this.#streamError(error);
      } finally {
        this.#sendsPending--;
      }
    };
    // With nothing pending, the native write starts now, not after the caller's synchronous
    // work: a leader replicates while it fsyncs (raft_node.ts), and every hop saved counts.
    const idle = this.#sendsPending === 0;
    this.#sendsPending++;
    const next = idle ? run() : this.#sendTail.then(run);
    this.#sendTail = next.catch(() => {});
    return next;
  }

  /** `work`, or a rejection as soon as this side resets; leaves nothing behind once settled. */
  #unlessReset<T>(work: Promise<T>): Promise<T> {
    if (this.#resetError !== null) {
      work.catch(() => {});
      return Promise.reject(this.#resetError);
    }
    return new Promise<T>((resolve, reject) => {
      this.#resetWaiters.add(reject);
      work.then(resolve, reject).finally(() => this.#resetWaiters.delete(reject));
    });
  }

  #streamError(error: unknown): TransportError {
    const cause = describeIrohError(error);
    const { description } = this.#options;
    const reset = /^Reset\((\d+)\)$/.exec(cause);
    if (reset !== null) {
      return new TransportError(
        "stream_reset",
        `${description}: reset by the peer with code ${reset[1]}`,
        {
          cause: error,
        },
      );
    }
    const stopped = /^Stopped\((\d+)\)$/.exec(cause);
    if (stopped !== null) {
      return new TransportError(
        "stream_stopped",
        `${description}: the peer stopped reading with code ${stopped[1]}`,
        {
          cause: error,
        },
      );
    }
    return new TransportError("connection_closed", `${description}: ${cause}`, { cause: error });
  }
}
