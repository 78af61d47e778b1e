/**
 * One authenticated Iroh connection for one protocol (ALPN), carrying framed streams.
 * `remoteNodeId` is the peer's public key as proven in the TLS handshake, so code above
 * can authorise by it (DESIGN.md section 5: only members speak `blixard/raft/1`).
 *
 * @module
 */

import { FramedStream } from "./framed_stream.ts";
import { describeIrohError, type IrohBiStream, type IrohConnection } from "./iroh.ts";
import type { NativeCalls } from "./native_calls.ts";
import { TransportError } from "./transport_error.ts";

/** Who opened the connection. */
export type ConnectionDirection = "incoming" | "outgoing";

/** How the connection's packets currently travel. */
export type ConnectionPath = "direct" | "relay" | "none";

/** Application error codes sent when closing a connection. */
export const ConnectionCloseCode = {
  /** Done with it. */
  normal: 0,
  /** This side refuses the peer: not a member, or over a limit. */
  refused: 1,
  /** The peer is not the P2P id that was dialled. */
  wrongIdentity: 2,
  /** The endpoint is shutting down. */
  shutdown: 3,
} as const;

/** Longest close reason sent, in bytes: the peer only logs it. */
const CLOSE_REASON_BYTES_MAX = 256;

/** Options of a {@linkcode P2pConnection}. */
export interface P2pConnectionOptions {
  /** The protocol negotiated in the handshake. */
  alpn: string;
  /** Who opened the connection. */
  direction: ConnectionDirection;
  /** Largest frame payload on its streams (a stream may be accepted with a smaller one). */
  frameBytesMax: number;
  /** The peer's `ip:port` as the UDP socket saw it; `null` when unknown (relay, outgoing). */
  remoteAddress?: string | null;
  /** Where its binding calls are tracked: its endpoint's, which waits for them on close. */
  nativeCalls: NativeCalls;
}

/** An Iroh connection for one ALPN; streams on it carry frames. */
export class P2pConnection {
  /** The peer's P2P id (Iroh endpoint id), authenticated by the handshake. */
  readonly remoteNodeId: string;
  /** The protocol negotiated in the handshake. */
  readonly alpn: string;
  /** Who opened the connection. */
  readonly direction: ConnectionDirection;
  /** The peer's `ip:port` as the UDP socket saw it, or `null` (relayed, or opened by this side). */
  readonly remoteAddress: string | null;
  /** Resolves once the connection is closed, by either side or by the network. */
  readonly closed: Promise<void>;
  readonly #native: IrohConnection;
  readonly #frameBytesMax: number;
  readonly #nativeCalls: NativeCalls;
  #closeReason: string | null = null;

  /** Wraps an established native connection. */
  constructor(native: IrohConnection, options: P2pConnectionOptions) {
    this.#native = native;
    this.remoteNodeId = native.remoteId().toString();
    this.alpn = options.alpn;
    this.direction = options.direction;
    this.remoteAddress = options.remoteAddress ?? null;
    this.#frameBytesMax = options.frameBytesMax;
    this.#nativeCalls = options.nativeCalls;
    this.closed = this.#nativeCalls.track(native.closed()).then(
      (reason) => {
        this.#closeReason ??= reason;
      },
      (error) => {
        this.#closeReason ??= describeIrohError(error);
      },
    );
  }

  /** Whether the connection is closed. */
  get isClosed(): boolean {
    return this.#closeReason !== null;
  }

  /** Why the connection closed, or `null` while it is open. */
  get closeReason(): string | null {
    return this.#closeReason;
  }

  /** Whether packets go directly, through a relay, or nowhere yet. */
  path(): ConnectionPath {
    return this.pathInfo().path;
  }

  /** The path packets take now, and its round-trip time in ms (`null` with no path yet). */
  pathInfo(): { path: ConnectionPath; rttMs: number | null } {
    const selected = this.#native.paths().find((path) => path.isSelected);
    if (selected === undefined) return { path: "none", rttMs: null };
    return { path: selected.isRelay ? "relay" : "direct", rttMs: selected.rttMs };
  }

  /** Opens a bidirectional stream. The peer sees it once the first frame is sent. */
  async openStream(): Promise<FramedStream> {
    try {
      return this.#wrap(await this.#nativeCalls.track(this.#native.openBi()));
    } catch (error) {
      throw new TransportError(
        "connection_closed",
        `${this.#describe()}: cannot open a stream: ${describeIrohError(error)}`,
        { cause: error },
      );
    }
  }

  /**
   * The next stream the peer opens, or `null` once the connection is closed.
   * `frameBytesMax`, asked when the stream has arrived (not before: the peer may have proved
   * the cluster secret meanwhile), bounds its frames, at most the connection's bound: e.g.
   * small for a caller that has not proved the secret.
   */
  async acceptStream(options?: { frameBytesMax?: () => number }): Promise<FramedStream | null> {
    try {
      const native = await this.#nativeCalls.track(this.#native.acceptBi());
      const frameBytesMax = Math.min(
        options?.frameBytesMax?.() ?? this.#frameBytesMax,
        this.#frameBytesMax,
      );
      return this.#wrap(native, frameBytesMax);
    } catch (error) {
      // acceptBi() fails only when the connection is gone, for whatever reason.
      this.#closeReason ??= describeIrohError(error);
      return null;
    }
  }

  /** Closes the connection with `reason` (sent to the peer) and `code`. */
  close(reason: string, code: number = ConnectionCloseCode.normal): void {
    if (this.#closeReason !== null) return;
    this.#closeReason = `closed by this side: ${reason}`;
    const reasonBytes = new TextEncoder().encode(reason).subarray(0, CLOSE_REASON_BYTES_MAX);
    this.#native.close(BigInt(code), Array.from(reasonBytes));
  }

  /**
   * Caps the streams the peer may have open at once (QUIC flow control: the peer cannot
   * open more until some end), e.g. a few for a peer that has not proved the secret.
   */
  setStreamsMax(count: number): void {
    this.#native.setMaxConcurrentBiStreams(BigInt(count));
  }

  #wrap(native: IrohBiStream, frameBytesMax = this.#frameBytesMax): FramedStream {
    return new FramedStream({ send: native.send, recv: native.recv }, {
      frameBytesMax,
      description: `${this.#describe()} stream`,
      nativeCalls: this.#nativeCalls,
    });
  }

  #describe(): string {
    return `${this.alpn} ${this.direction === "outgoing" ? "to" : "from"} ${this.remoteNodeId}`;
  }
}
