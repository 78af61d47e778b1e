/**
 * What a stranger may hold of a node (DESIGN.md section 8; issue 9 item 5). A stranger is a
 * caller whose key is neither a member's nor authenticated, on a node with a cluster secret:
 * all it may do is `ping` and prove the secret, which takes a few small requests. So it gets
 * a few connections per source address and per key, a few small streams per connection, a
 * short deadline to send each request, and its connections close when idle; the rest of the
 * node's capacity is reserved for members and authenticated keys.
 *
 * The endpoint enforces the connection caps (`p2p_endpoint.ts`), the RPC server the stream
 * and request caps (`rpc.ts`). Which keys are trusted is the gate's decision (`src/auth/`),
 * given to both as a {@linkcode TrustCheck}; without a secret everyone is trusted, as anyone
 * may join.
 *
 * @module
 */

/** Whether the key `p2pNodeId` is a member's or proved the secret. */
export type TrustCheck = (p2pNodeId: string) => boolean;

/** The bounds on strangers. */
export interface StrangerLimits {
  /** Strangers' incoming connections (and handshakes) at once, across all sources. */
  connectionsMax: number;
  /** Strangers' incoming connections (and handshakes) from one source address (IPv6: /64). */
  connectionsPerSourceMax: number;
  /** Incoming connections of one stranger's key. */
  connectionsPerKeyMax: number;
  /** Largest request frame from a stranger: `ping` and the proof are a few dozen bytes. */
  frameBytesMax: number;
  /** Streams a stranger may have open on one connection (QUIC flow control). */
  streamsPerConnectionMax: number;
  /** Strangers' requests in progress at once, across all sources. */
  requestsMax: number;
  /** Strangers' requests in progress at once from one source address. */
  requestsPerSourceMax: number;
  /** How long a stranger has to send its whole request. */
  requestTimeoutMs: number;
  /** A stranger's connection with no request for this long is closed. */
  idleTimeoutMs: number;
}

/**
 * The defaults. The incoming connection limit is 256 and the RPC server's 1024 requests, so
 * members and authenticated keys keep at least 64 connections and 768 requests.
 */
export const STRANGER_LIMITS_DEFAULT: StrangerLimits = {
  connectionsMax: 192,
  connectionsPerSourceMax: 16,
  connectionsPerKeyMax: 4,
  frameBytesMax: 4 * 1024,
  streamsPerConnectionMax: 4,
  requestsMax: 256,
  requestsPerSourceMax: 16,
  requestTimeoutMs: 2_000,
  idleTimeoutMs: 10_000,
};

/** Streams a trusted peer may have open on one connection: QUIC's usual default. */
export const TRUSTED_STREAMS_PER_CONNECTION_MAX = 100;
