/**
 * The error every P2P transport operation fails with. `code` says what kind of failure it
 * was, so that callers (the RPC client, the bootstrap client, metrics) can react to the kind
 * without parsing the message; the message is one line for the operator.
 *
 * @module
 */

/** What kind of transport failure happened. */
export type TransportErrorCode =
  /** The UDP socket could not be bound. */
  | "bind_failed"
  /** A peer's P2P id or addresses are not usable. */
  | "invalid_peer"
  /** The connect deadline passed before the handshake finished. */
  | "connect_timeout"
  /** The handshake failed for another reason (refused, unreachable, ALPN not served). */
  | "connect_failed"
  /** The peer is not the P2P id we dialled: its TLS key differs. */
  | "wrong_identity"
  /** The connection or the endpoint is closed. */
  | "connection_closed"
  /** The peer reset the stream we were reading. */
  | "stream_reset"
  /** The peer stopped reading the stream we were writing. */
  | "stream_stopped"
  /** A frame on the stream was oversized, truncated or not msgpack; the stream was reset. */
  | "malformed_frame";

/** A failure of the P2P transport; `code` classifies it, the message explains it. */
export class TransportError extends Error {
  override name = "TransportError";
  /** The kind of failure. */
  readonly code: TransportErrorCode;

  /** `cause` is the lower-level error, kept for debugging. */
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
