/**
 * Calls a node's `blixard/rpc/1` methods directly, without `BlixardClient`'s sessions,
 * retries and paging, so that a test can send exactly the request it means: the same
 * client id and sequence twice, or one `kv.list` page.
 *
 * @module
 */

import { authenticate, AuthenticatingRpcClient } from "../../src/auth/authenticate.ts";
import type { ClusterSecret } from "../../src/auth/cluster_secret.ts";
import { P2pEndpoint, type PeerAddress } from "../../src/transport/p2p_endpoint.ts";
import {
  RpcClient,
  type RpcDefinition,
  type RpcRequestOf,
  type RpcResponseOf,
} from "../../src/transport/rpc.ts";
import type { NodeProcess } from "./node_process.ts";

/** Default deadline of one call: generous, since a test waits for a committed answer. */
const CALL_TIMEOUT_MS = 15_000;

/** An RPC connection from the test to one node. Close it with `close()`. */
export class RawRpc {
  readonly #endpoint: P2pEndpoint;
  readonly #client: RpcClient;
  readonly #peer: PeerAddress;

  readonly #secret: ClusterSecret | null;

  private constructor(endpoint: P2pEndpoint, peer: PeerAddress, secret: ClusterSecret | null) {
    this.#endpoint = endpoint;
    this.#client = secret === null
      ? new RpcClient(endpoint)
      : new AuthenticatingRpcClient(endpoint, { secret });
    this.#peer = peer;
    this.#secret = secret;
  }

  /**
   * Binds an endpoint on 127.0.0.1 (with a fresh key unless `options.secretKey` gives one)
   * and targets `node` by the key its `/bootstrap` gives. With `options.secret` the calls
   * prove it when the node asks, as the CLI does.
   */
  static async connect(
    node: NodeProcess,
    options: { secret?: ClusterSecret; secretKey?: Uint8Array } = {},
  ): Promise<RawRpc> {
    const info = await node.getJson("/bootstrap");
    const endpoint = await P2pEndpoint.bind({
      secretKey: options.secretKey ?? crypto.getRandomValues(new Uint8Array(32)),
      bindAddress: "127.0.0.1:0",
      relayUrl: null,
    });
    return new RawRpc(endpoint, {
      p2pNodeId: info.p2p_node_id as string,
      addresses: info.p2p_addresses as string[],
      relayUrl: null,
    }, options.secret ?? null);
  }

  /** Proves the secret given to `connect` to the node now, before it asks. */
  async authenticate(): Promise<void> {
    if (this.#secret === null) throw new Error("RawRpc.connect() was given no secret");
    await authenticate(
      (definition, request, callOptions) =>
        this.#client.call(this.#peer, definition, request, callOptions),
      {
        secret: this.#secret,
        callerP2pNodeId: this.#endpoint.nodeId,
        serverP2pNodeId: this.#peer.p2pNodeId,
        timeoutMs: CALL_TIMEOUT_MS,
      },
    );
  }

  /** The test's own P2P id and addresses, for a request that names its caller. */
  get self(): { p2pNodeId: string; addresses: string[] } {
    return { p2pNodeId: this.#endpoint.nodeId, addresses: this.#endpoint.addresses() };
  }

  /** Calls `definition` once on the node; rejects with the node's `RpcError`. */
  async call<Definition extends RpcDefinition>(
    definition: Definition,
    request: RpcRequestOf<Definition>,
    options: { timeoutMs?: number } = {},
  ): Promise<RpcResponseOf<Definition>> {
    return await this.#client.call(this.#peer, definition, request, {
      timeoutMs: options.timeoutMs ?? CALL_TIMEOUT_MS,
    });
  }

  /** Closes the connection and the endpoint. */
  async close(): Promise<void> {
    await this.#client.close();
    await this.#endpoint.close();
  }
}
