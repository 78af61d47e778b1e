/**
 * `ping`: the cheapest proof that a peer serves `blixard/rpc/1` and who it is. A joiner
 * pings the seed it found over HTTP before trusting it, and compares the answer with what
 * the seed's `/bootstrap` advertised.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { isValidEndpointId } from "./iroh.ts";
import { defineRpc, type RpcHandler } from "./rpc.ts";

/**
 * `ping`: no request fields; the answer names the node and its P2P id. In `zod/mini`, as every
 * schema a node's start parses: a start then builds no schema of the classic API, whose first
 * one costs a process about 15 ms of CPU (docs/benchmarks.md, "zod/mini on the start path").
 */
export const PING_RPC = defineRpc({
  method: "ping",
  request: () => z.strictObject({}),
  response: () =>
    z.strictObject({
      /** The answering node's cluster node id. */
      nodeId: z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)),
      /** The answering node's P2P id. */
      p2pNodeId: z.string().check(z.refine(isValidEndpointId, "not a valid Iroh endpoint id")),
    }),
});

/** The server side of `ping` for the node with `identity`. */
export function pingHandler(
  identity: { nodeId: number; p2pNodeId: string },
): RpcHandler<typeof PING_RPC> {
  const answer = PING_RPC.response.parse(identity);
  return () => answer;
}
