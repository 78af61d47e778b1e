/**
 * An in-memory twin of the multicast socket, for tests of the responder and of discovery:
 * it records what they send and delivers packets "from the network" to them. Production
 * code does not import this module.
 *
 * @module
 */

import { NodeMetrics } from "../http/metrics.ts";
import { SecretKey } from "../transport/iroh.ts";
import type { Advert } from "./advert.ts";
import { MdnsDiscovery, type MdnsDiscoveryOptions } from "./mdns_discovery.ts";
import type { ResponderRecords, ResponderTiming } from "./mdns_responder.ts";
import type { DnsPacket, MulticastSocket, RemoteInfo } from "./multicast_socket.ts";

/** RFC 6762's delays shortened about tenfold, for responder tests that run in process. */
export const FAST_RESPONDER_TIMING: ResponderTiming = {
  probeDelayMaxMs: 0,
  probeIntervalMs: 30,
  tieBreakDeferMs: 100,
  announceIntervalMs: 30,
  multicastIntervalMs: 200,
  probeDefenseIntervalMs: 10,
  conflictPauseMs: 300,
  // No shared-answer delay: the tests of it set their own (mdns_answer_delay_test.ts).
  sharedAnswerDelayMinMs: 0,
  sharedAnswerDelayMaxMs: 0,
};

/** The records of the responder under test: node 4, with a fixed P2P id. */
export const TEST_RESPONDER_RECORDS: ResponderRecords = {
  nodeId: 4,
  p2pNodeId: "0123456789abcdef".repeat(4),
  p2pPort: 7004,
  hostAddress: "192.0.2.4",
};

/** One packet the code under test sent. */
export interface SentPacket {
  kind: "query" | "response";
  packet: Partial<DnsPacket>;
  /** `null` for multicast. */
  to: RemoteInfo | null;
}

type Listener = (...args: never[]) => void;

/** A `MulticastSocket` that keeps what is sent and lets the test deliver packets. */
export class FakeMulticastSocket implements MulticastSocket {
  readonly sent: SentPacket[] = [];
  destroyed = false;
  readonly #listeners = new Map<string, Listener[]>();
  readonly #onMulticast: (kind: SentPacket["kind"], packet: Partial<DnsPacket>) => void;

  /** A socket alone, or on a `FakeMulticastLink` that carries what it multicasts. */
  constructor(
    onMulticast: (kind: SentPacket["kind"], packet: Partial<DnsPacket>) => void = () => {},
  ) {
    this.#onMulticast = onMulticast;
  }

  on(event: string, listener: Listener): void {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
  }

  query(packet: Partial<DnsPacket>, callback?: (error: Error | null) => void): void {
    this.sent.push({ kind: "query", packet: structuredClone(packet), to: null });
    this.#onMulticast("query", packet);
    queueMicrotask(() => callback?.(null));
  }

  respond(
    packet: Partial<DnsPacket>,
    to?: RemoteInfo | null,
    callback?: (error: Error | null) => void,
  ): void {
    this.sent.push({ kind: "response", packet: structuredClone(packet), to: to ?? null });
    if (to === undefined || to === null) this.#onMulticast("response", packet);
    queueMicrotask(() => callback?.(null));
  }

  destroy(callback?: () => void): void {
    this.destroyed = true;
    queueMicrotask(() => callback?.());
  }

  /** Delivers `packet` as if it came from `from` (default: a peer on port 5353). */
  deliver(
    kind: "query" | "response",
    packet: Partial<DnsPacket>,
    from: RemoteInfo = { address: "192.0.2.9", port: 5353 },
  ): void {
    const full: DnsPacket = { questions: [], answers: [], additionals: [], ...packet };
    for (const listener of this.#listeners.get(kind) ?? []) {
      (listener as (packet: DnsPacket, from: RemoteInfo) => void)(full, from);
    }
  }

  /** The responses sent so far. */
  responses(): SentPacket[] {
    return this.sent.filter((sent) => sent.kind === "response");
  }
}

/**
 * A shared link for several `FakeMulticastSocket`s: what one sends, every socket on the
 * link receives (its sender too, as multicast loopback does), a turn of the event loop
 * later, from port 5353.
 */
export class FakeMulticastLink {
  readonly #sockets: FakeMulticastSocket[] = [];
  #partitioned: boolean;

  /** A link; `partitioned`, each socket hears only itself until `heal()`. */
  constructor(options: { partitioned?: boolean } = {}) {
    this.#partitioned = options.partitioned ?? false;
  }

  /** Joins the parts: from now on every socket hears every other. */
  heal(): void {
    this.#partitioned = false;
  }

  /** A new socket on this link. */
  socket(): FakeMulticastSocket {
    const socket: FakeMulticastSocket = new FakeMulticastSocket((kind, packet) => {
      setTimeout(() => {
        for (const member of this.#sockets) {
          if (member.destroyed || (this.#partitioned && member !== socket)) continue;
          member.deliver(kind, structuredClone(packet));
        }
      }, 0);
    });
    this.#sockets.push(socket);
    return socket;
  }
}

/**
 * `MdnsDiscovery` of node 1 on `socket`, with a fresh P2P id, no secret and no cluster
 * filter unless `options` say otherwise.
 */
export function startTestDiscovery(
  socket: MulticastSocket,
  options: Partial<MdnsDiscoveryOptions> = {},
): Promise<MdnsDiscovery> {
  return MdnsDiscovery.start({
    socket,
    nodeId: 1,
    p2pNodeId: SecretKey.generate().public().toString(),
    p2pPort: 7001,
    httpPort: 8001,
    hostAddress: "192.0.2.1",
    source: { clusterId: () => null, addresses: () => ["192.0.2.1:7001"] },
    clusterSecret: null,
    clusterIdFilter: null,
    metrics: new NodeMetrics({ defaultMetrics: false }),
    ...options,
  });
}

/** An unsigned advert of node `nodeId` in `clusterId`, with a fresh P2P id. */
export function testAdvert(nodeId: number, clusterId: string | null): Advert {
  return {
    nodeId,
    clusterId,
    p2pNodeId: SecretKey.generate().public().toString(),
    addresses: [`192.0.2.${nodeId}:7001`],
    httpPort: 8001,
    issuedAtMs: null,
    signature: null,
  };
}
