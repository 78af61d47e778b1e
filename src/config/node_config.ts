/**
 * `NodeConfig`: the validated configuration of one node, as the node and its parts read it.
 * The command line (`src/cli/node_config.ts`) builds it from flags and `BLIXARD_*`
 * variables and checks every value; the node, discovery and start-up take it as it is.
 * Kept apart from the parser so that `src/node/` and `src/discovery/` never import the CLI.
 *
 * @module
 */

import type { ClusterSecretSource } from "../auth/cluster_secret.ts";
import type { InviteTicket } from "../state_machine/invites.ts";
import type { LogFormat, LogLevelName } from "../log/logging.ts";

/** The validated configuration of one node. */
export interface NodeConfig {
  /** Cluster node id (Raft id), an integer ≥ 1. */
  readonly nodeId: number;
  /** Host the P2P endpoint (UDP) and the HTTP server (TCP) bind to; IPv6 without brackets. */
  readonly bindHost: string;
  /** UDP port of the P2P endpoint. */
  readonly bindPort: number;
  /** TCP port of the HTTP server: `--http-bind`'s, else `bindPort + HTTP_PORT_OFFSET`. */
  readonly httpPort: number;
  /** Host of the HTTP server: `--http-bind`'s, else `bindHost`; IPv6 without brackets. */
  readonly httpHost: string;
  /**
   * `--advertise`: the P2P addresses (canonical `ip:port`) peers are told to dial, in
   * `/bootstrap` and in the member record. Empty: derived from the bind address.
   */
  readonly advertiseAddresses: readonly string[];
  /** Directory of the node's durable state. */
  readonly dataDir: string;
  /** Seeds to join through, as given: `host:port`, `http(s)://…` or `dns:NAME`. */
  readonly peers: readonly string[];
  /** Self-hosted iroh relay, or `null` for relays off. */
  readonly relayUrl: string | null;
  /** How long the join keeps retrying before start-up fails. */
  readonly joinTimeoutMs: number;
  /** Lowest log level written. */
  readonly logLevel: LogLevelName;
  /** Log line format. */
  readonly logFormat: LogFormat;
  /** Whether mDNS discovery is on (opt-in, DESIGN.md section 7). */
  readonly mdnsEnabled: boolean;
  /** How mDNS discovers and forms (issue 10); read only when `mdnsEnabled`. */
  readonly discovery: DiscoveryConfig;
  /**
   * Where the cluster secret comes from (its file, or `BLIXARD_CLUSTER_SECRET`), or `null`
   * for none. It is read and checked at start; a secret value prints as `[redacted]`.
   */
  readonly clusterSecret: ClusterSecretSource | null;
  /**
   * `--restore FILE`: found a new cluster (new cluster id) from this backup, into an empty
   * data dir; `null` otherwise. A flag only, never from the environment: it acts once.
   */
  readonly restoreFile: string | null;
  /**
   * `--force-new-cluster`: recover from a lost quorum by rewriting the membership to this
   * node alone. A flag only, spelled out in full, never from the environment.
   */
  readonly forceNewCluster: boolean;
  /** `--dns-server`: the resolver of `dns:NAME` peers, or `null` for the system's. */
  readonly dnsServer: DnsServer | null;
  /**
   * `--join TICKET` (or `BLIXARD_JOIN_TICKET`): an invite ticket to join by, decoded and
   * checked; `null` for none. Ignored once the data dir holds Raft state (a restart).
   */
  readonly joinTicket: InviteTicket | null;
  /**
   * `--max-voters`: while this node leads, the autopilot promotes learners to voters up to
   * this many (odd, 1 to `VOTERS_MAX_LIMIT`); the others stay learners.
   */
  readonly votersMax: number;
}

/** A name server for `Deno.resolveDns`: an IP address and a port. */
export interface DnsServer {
  readonly ipAddr: string;
  readonly port: number;
}

/** The mDNS settings of a node. */
export interface DiscoveryConfig {
  /** `--mdns-interface`: an interface name or IPv4 address; `null` for the one of `--bind`. */
  readonly interface: string | null;
  /** `--bootstrap-expect`: form a new cluster once this many nodes see each other. */
  readonly bootstrapExpect: number | null;
  /** `--discovery-wait`: how long a node without `--peers` browses before it founds. */
  readonly discoveryWaitMs: number;
  /** `--cluster-id`: join only this cluster (and found it under this id). */
  readonly clusterId: string | null;
}
