/**
 * The P2P transport: Iroh QUIC connections between nodes (DESIGN.md section 5).
 *
 * - `P2pEndpoint` binds the node's UDP socket under its Iroh identity, connects to peers
 *   with a deadline and a check of their key, and routes accepted connections by ALPN.
 * - `P2pConnection` and `FramedStream` carry msgpack frames (`frame_codec.ts`: a 4-byte
 *   length prefix, oversize frames refused from the prefix) over bidirectional streams.
 * - `RpcServer`, `RpcClient` and `callRpc` make one request/response per stream on
 *   `blixard/rpc/1`, with methods declared by `defineRpc` and zod schemas; `PING_RPC` is
 *   the first method.
 *
 * Only `iroh.ts` imports the Iroh binding. `testing.ts` holds helpers for tests and is not
 * exported here.
 *
 * @module
 */

export * from "./alpn.ts";
export * from "./deadline.ts";
export * from "./frame_codec.ts";
export * from "./framed_stream.ts";
export * from "./p2p_connection.ts";
export * from "./p2p_endpoint.ts";
export * from "./ping_rpc.ts";
export * from "./rpc.ts";
export * from "./socket_address.ts";
export * from "./stranger_limits.ts";
export * from "./transport_error.ts";
export { describeIrohError, isValidEndpointId } from "./iroh.ts";
