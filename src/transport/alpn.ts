/**
 * The application protocols (ALPNs) Blixard speaks over Iroh, one per protocol and
 * versioned (DESIGN.md section 5). A peer that offers none of the protocols an endpoint
 * serves is refused during the TLS handshake, before any application code runs.
 *
 * @module
 */

/** Raft messages between members. */
export const RAFT_ALPN = "blixard/raft/1";

/** Requests from joiners, operators and other nodes: one request/response per stream. */
export const RPC_ALPN = "blixard/rpc/1";

/** The longest ALPN TLS allows (RFC 7301 §3.1: a length byte of 1–255). */
export const ALPN_BYTES_MAX = 255;

/** `RAFT_ALPN` as the bytes the TLS handshake carries. */
export const RAFT_ALPN_BYTES: Uint8Array = alpnBytes(RAFT_ALPN);

/** `RPC_ALPN` as the bytes the TLS handshake carries. */
export const RPC_ALPN_BYTES: Uint8Array = alpnBytes(RPC_ALPN);

/** Encodes an ALPN as UTF-8, refusing one that TLS cannot carry. */
export function alpnBytes(alpn: string): Uint8Array {
  const bytes = new TextEncoder().encode(alpn);
  if (bytes.length === 0 || bytes.length > ALPN_BYTES_MAX) {
    throw new RangeError(`ALPN ${JSON.stringify(alpn)}: must be 1–${ALPN_BYTES_MAX} bytes`);
  }
  return bytes;
}

/** Decodes ALPN bytes from a handshake; bytes that are not UTF-8 come back replaced, for logs. */
export function alpnText(bytes: ArrayLike<number>): string {
  return new TextDecoder().decode(Uint8Array.from(bytes));
}
