/**
 * mDNS as a node starts it: which interface (`--mdns-interface`, else the one of `--bind`),
 * what it advertises (its P2P id and port, HTTP port, addresses and, once it has one, its
 * cluster), and the two questions the start-up asks of it: found or join
 * (`decideStart`, the formation rule), and where is a seed (`discoverSeed`).
 *
 * @module
 */

import { networkInterfaces } from "node:os";
import type { ClusterSecret } from "../auth/cluster_secret.ts";
import type { Seed } from "../bootstrap/bootstrap_client.ts";
import type { NodeConfig } from "../config/node_config.ts";
import { reasonOf, StartupError } from "../util/errors.ts";
import type { NodeMetrics } from "../http/metrics.ts";
import { getLogger } from "../log/logging.ts";
import type { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { parseSocketAddress } from "../transport/socket_address.ts";
import { MdnsDiscovery } from "./mdns_discovery.ts";
import { awaitFormation, findSeedByMdns } from "./mdns_join.ts";
import { openMulticastSocket, openOneShotSocket } from "./multicast_socket.ts";

const log = getLogger(["blixard", "mdns"]);

/** What {@linkcode startNodeDiscovery} needs of the node. */
export interface NodeDiscoveryContext {
  endpoint: P2pEndpoint;
  clusterSecret: ClusterSecret | null;
  metrics: NodeMetrics;
  /** The node's cluster id once it has one. */
  clusterId: () => string | null;
}

/** mDNS of a running node. */
export class NodeDiscovery {
  readonly discovery: MdnsDiscovery;
  readonly #config: NodeConfig;
  readonly #endpoint: P2pEndpoint;

  private constructor(config: NodeConfig, endpoint: P2pEndpoint, discovery: MdnsDiscovery) {
    this.#config = config;
    this.#endpoint = endpoint;
    this.discovery = discovery;
  }

  /**
   * Opens the mDNS socket and starts advertising and browsing, or returns `null` when mDNS
   * is off: then nothing multicast is sent or listened to. Throws `StartupError` when the
   * interface cannot be found or the socket cannot be bound.
   */
  static async start(
    config: NodeConfig,
    context: NodeDiscoveryContext,
  ): Promise<NodeDiscovery | null> {
    if (!config.mdnsEnabled) return null;
    const interfaceAddress = mdnsInterfaceAddress(config);
    const opened = await Promise.allSettled([
      openMulticastSocket(interfaceAddress),
      openOneShotSocket(interfaceAddress),
    ]);
    const [socket, oneShotSocket] = opened;
    if (socket.status === "rejected" || oneShotSocket.status === "rejected") {
      for (const result of opened) if (result.status === "fulfilled") result.value.destroy();
      const error = socket.status === "rejected"
        ? socket.reason
        : (oneShotSocket as PromiseRejectedResult).reason;
      const port = socket.status === "rejected" ? "5353" : "an ephemeral port";
      throw new StartupError(
        `mDNS: cannot listen on UDP ${port} (interface ${interfaceAddress ?? "all"}): ` +
          `${reasonOf(error)}; check --mdns-interface, or start without --mdns`,
        { cause: error },
      );
    }
    const endpoint = context.endpoint;
    const firstIpv4 = endpoint.addresses().map(parseSocketAddress)
      .find((address) => address?.family === 4)?.host ?? null;
    const discovery = await MdnsDiscovery.start({
      socket: socket.value,
      oneShotSocket: oneShotSocket.value,
      nodeId: config.nodeId,
      p2pNodeId: endpoint.nodeId,
      p2pPort: config.bindPort,
      httpPort: config.httpPort,
      hostAddress: interfaceAddress ?? firstIpv4,
      source: { clusterId: context.clusterId, addresses: () => endpoint.addresses() },
      clusterSecret: context.clusterSecret,
      clusterIdFilter: config.discovery.clusterId,
      metrics: context.metrics,
    });
    log.info("mDNS on (interface {address}): browsing _blixard._udp.local", {
      address: interfaceAddress ?? "all IPv4",
    });
    return new NodeDiscovery(config, endpoint, discovery);
  }

  /**
   * For a new node without `--peers`: waits for the formation rule (`--bootstrap-expect`,
   * `--discovery-wait`) and says whether to found a cluster or join one.
   */
  async decideStart(options: {
    signal: AbortSignal;
    onWait: (reason: string) => void;
  }): Promise<"found" | "join"> {
    const decision = await awaitFormation(this.discovery, {
      selfNodeId: this.#config.nodeId,
      bootstrapExpect: this.#config.discovery.bootstrapExpect,
      clusterIdFilter: this.#config.discovery.clusterId,
      discoveryWaitMs: this.#config.discovery.discoveryWaitMs,
      timeoutMs: this.#config.joinTimeoutMs,
      signal: options.signal,
      onWait: options.onWait,
    });
    if (decision.kind === "join") {
      log.info("mDNS: joining cluster {clusterId} of node {nodeId}", {
        clusterId: decision.clusterId,
        nodeId: decision.nodeId,
      });
    } else {
      log.info("mDNS: no cluster to join; founding one");
    }
    return decision.kind;
  }

  /** Finds a seed among the candidates (for `joinCluster`'s `discoverSeed`). */
  discoverSeed(timeoutMs: number, signal: AbortSignal): Promise<Seed> {
    return findSeedByMdns(this.discovery, {
      endpoint: this.#endpoint,
      selfNodeId: this.#config.nodeId,
      clusterIdFilter: this.#config.discovery.clusterId,
      timeoutMs,
      signal,
    });
  }

  /** Says goodbye and closes the socket. */
  stop(): Promise<void> {
    return this.discovery.stop();
  }
}

/**
 * The IPv4 address of the mDNS interface: `--mdns-interface` (an address, or a name looked
 * up among the host's interfaces), else `--bind`'s host; `null` (every IPv4 interface)
 * when `--bind` is `0.0.0.0`.
 */
export function mdnsInterfaceAddress(config: NodeConfig): string | null {
  const chosen = config.discovery.interface;
  if (chosen === null) {
    if (config.bindHost === "0.0.0.0") return null;
    if (parseSocketAddress(`${config.bindHost}:1`)?.family === 4) return config.bindHost;
    throw new StartupError(
      `--bind ${config.bindHost}: mDNS runs over IPv4 in this version; give --mdns-interface ` +
        "with an IPv4 interface",
    );
  }
  if (parseSocketAddress(`${chosen}:1`)?.family === 4) return chosen;
  const addresses = networkInterfaces()[chosen] ?? [];
  const ipv4 = addresses.find((address) => address.family === "IPv4");
  if (ipv4 === undefined) {
    throw new StartupError(
      `--mdns-interface ${chosen}: no such interface with an IPv4 address on this host; ` +
        `give one of ${Object.keys(networkInterfaces()).join(", ")} or an IPv4 address`,
    );
  }
  return ipv4.address;
}
