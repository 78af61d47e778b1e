/**
 * `startNode()`: one cluster node, assembled from its parts in the order that keeps a
 * failed start harmless (DESIGN.md sections 1, 3, 6):
 *
 * 1. lock the data dir and load (or create) the P2P identity;
 * 2. bind the Iroh endpoint on UDP `--bind` and serve `blixard/rpc/1`;
 * 3. serve HTTP on TCP bind port + 1000;
 * 4. log "ready";
 * 5. with `--peers`, find a seed: `/bootstrap` over HTTP, then an Iroh connection that must
 *    reach the advertised P2P id, then `ping`.
 *
 * A step that fails releases everything before it, so a failed start writes nothing to
 * the data dir but the identity key, and leaves no port bound.
 *
 * @module
 */

import type { NodeConfig } from "../cli/node_config.ts";
import { reasonOf, StartupError } from "../cli/errors.ts";
import { getLogger } from "../log/logging.ts";
import { NodeMetrics } from "../http/metrics.ts";
import { startHttpServer } from "../http/http_server.ts";
import { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { RpcServer } from "../transport/rpc.ts";
import { PING_RPC, pingHandler } from "../transport/ping_rpc.ts";
import { findSeed, type Seed } from "../bootstrap/bootstrap_client.ts";
import { bootstrapInfoFor } from "../bootstrap/bootstrap_info.ts";
import { openDataDir } from "./data_dir.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { ResourceStack } from "./resource_stack.ts";
import { JoinProgress } from "./join_progress.ts";
import { wireEndpointMetrics } from "./endpoint_metrics.ts";

const log = getLogger(["blixard", "node"]);

/** A running node. */
export interface Node {
  readonly nodeId: number;
  readonly p2pNodeId: string;
  /** Resolves with the process exit code once the node has stopped. */
  readonly finished: Promise<number>;
  /** Stops gracefully; resolves once everything is released. Idempotent. */
  stop(reason: string): Promise<void>;
}

/** Starts a node from `config`. Rejects with `StartupError` when it cannot start. */
export async function startNode(config: NodeConfig): Promise<Node> {
  const resources = new ResourceStack();
  try {
    return await assemble(config, resources);
  } catch (error) {
    await resources.releaseAll();
    throw error;
  }
}

async function assemble(config: NodeConfig, resources: ResourceStack): Promise<Node> {
  const startedAtMs = performance.now();
  const dataDir = await openDataDir(config.dataDir);
  resources.push("data dir lock", () => dataDir.release());
  const identity = await loadOrCreateIdentity(dataDir.path);

  const metrics = new NodeMetrics();
  const endpoint = await bindEndpoint(config, identity.secretKey);
  resources.push("P2P endpoint", () => endpoint.close());
  wireEndpointMetrics(endpoint, metrics);

  const rpcServer = new RpcServer();
  rpcServer.register(PING_RPC, pingHandler({ nodeId: config.nodeId, p2pNodeId: endpoint.nodeId }));
  rpcServer.serve(endpoint);

  const join = new JoinProgress(config.peers.length > 0 ? "discovering" : null);
  let serving = true;
  const http = await startHttpServer({
    hostname: config.bindHost,
    port: config.httpPort,
    metrics,
    routes: {
      bootstrap: () =>
        bootstrapInfoFor(endpoint, { nodeId: config.nodeId, clusterId: null, leaderId: null }),
      status: () => ({
        node_id: config.nodeId,
        cluster_id: null,
        role: serving ? (join.phase === null ? "follower" : "joining") : "stopping",
        term: null,
        leader_id: null,
        commit_index: null,
        applied_index: null,
        members: [],
        join: join.toJson(),
      }),
      isServing: () => serving,
    },
  });
  resources.push("HTTP server", () => http.shutdown());

  log.info("ready node_id={nodeId} p2p_node_id={p2pNodeId} udp={udp} http={http} in {startMs} ms", {
    nodeId: config.nodeId,
    p2pNodeId: endpoint.nodeId,
    udp: endpoint.addresses().join(","),
    http: joinHostPort(config.bindHost, http.port),
    startMs: Math.round(performance.now() - startedAtMs),
  });

  const stopped = Promise.withResolvers<number>();
  let stopping: Promise<void> | null = null;
  const stop = (reason: string, exitCode = 0): Promise<void> => {
    stopping ??= (async () => {
      serving = false;
      log.info("stopping: {reason}", { reason });
      await resources.releaseAll();
      log.info("stopped");
      stopped.resolve(exitCode);
    })();
    return stopping;
  };

  if (config.peers.length > 0) {
    connectToSeed(config, { endpoint, metrics, join }).then(
      (seed) => seed.connection.close("seed verified"),
      (error) => {
        log.error("{message}", { message: reasonOf(error) });
        stop("could not join", 1);
      },
    );
  }

  return { nodeId: config.nodeId, p2pNodeId: endpoint.nodeId, finished: stopped.promise, stop };
}

async function bindEndpoint(config: NodeConfig, secretKey: Uint8Array): Promise<P2pEndpoint> {
  const bindAddress = joinHostPort(config.bindHost, config.bindPort);
  try {
    return await P2pEndpoint.bind({ secretKey, bindAddress, relayUrl: config.relayUrl });
  } catch (error) {
    // The endpoint's message names the UDP address and the cause; say which flag sets it.
    throw new StartupError(`--bind ${bindAddress}: ${reasonOf(error)}`, { cause: error });
  }
}

async function connectToSeed(
  config: NodeConfig,
  context: { endpoint: P2pEndpoint; metrics: NodeMetrics; join: JoinProgress },
): Promise<Seed> {
  const seed = await findSeed([...config.peers], {
    endpoint: context.endpoint,
    joinTimeoutMs: config.joinTimeoutMs,
    onEvent: (event) => {
      context.metrics.recordBootstrapFetch(event.outcome);
      if (event.reason !== null) context.join.failed(event.message);
    },
  });
  context.join.advance("connected");
  log.info("connected to seed {peer}: node {seedId}, p2p_node_id={p2pNodeId}, path {path}", {
    peer: seed.peer,
    seedId: seed.info.node_id,
    p2pNodeId: seed.info.p2p_node_id,
    path: seed.connection.path(),
  });
  return seed;
}

/** `host:port`, with IPv6 hosts in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
