/**
 * The multicast DNS socket: `multicast-dns` (UDP 5353, group 224.0.0.251, the `dns-packet`
 * codec), typed for what Blixard uses. It is opened only when mDNS is on: a node without
 * `--mdns` never creates one, so it sends and listens to nothing multicast, and does not
 * even load the library (imported on first use).
 *
 * @module
 */

/** A resource record as `dns-packet` encodes and decodes it. */
export interface DnsRecord {
  name: string;
  type: string;
  ttl?: number;
  class?: string;
  flush?: boolean;
  // deno-lint-ignore no-explicit-any
  data?: any;
}

/** A question as `dns-packet` encodes and decodes it. */
export interface DnsQuestion {
  name: string;
  type: string;
  class?: string;
}

/** A decoded DNS message. */
export interface DnsPacket {
  id?: number;
  type?: "query" | "response";
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities?: DnsRecord[];
  additionals: DnsRecord[];
}

/** Where a packet came from. */
export interface RemoteInfo {
  address: string;
  port: number;
  size?: number;
}

/** The DNS port and IPv4 group of mDNS (RFC 6762 §3). */
export const MDNS_PORT = 5353;
export const MDNS_GROUP_V4 = "224.0.0.251";

/** The socket. */
export interface MulticastSocket {
  on(event: "query" | "response", listener: (packet: DnsPacket, from: RemoteInfo) => void): void;
  on(event: "warning" | "error", listener: (error: Error) => void): void;
  on(event: "ready", listener: () => void): void;
  query(packet: Partial<DnsPacket>, callback?: (error: Error | null) => void): void;
  respond(
    packet: Partial<DnsPacket>,
    to?: RemoteInfo | null,
    callback?: (error: Error | null) => void,
  ): void;
  destroy(callback?: () => void): void;
}

/**
 * Opens the mDNS socket on the interface with IPv4 address `interfaceAddress` (every
 * IPv4 interface when `null`). Resolves once it is bound; rejects when it cannot be.
 */
export async function openMulticastSocket(
  interfaceAddress: string | null,
): Promise<MulticastSocket> {
  const { default: multicastDns } = await import("multicast-dns");
  const socket = multicastDns({
    port: MDNS_PORT,
    ip: MDNS_GROUP_V4,
    bind: "0.0.0.0",
    ...(interfaceAddress === null ? {} : { interface: interfaceAddress }),
    reuseAddr: true,
    loopback: true,
    ttl: 255,
  }) as unknown as MulticastSocket;
  return await new Promise((resolve, reject) => {
    socket.on("error", reject);
    socket.on("ready", () => resolve(socket));
  });
}

/**
 * Opens a socket for one-shot queries (RFC 6762 §5.1): bound to an ephemeral port on the
 * interface with IPv4 address `interfaceAddress` (any when `null`), sending to the mDNS
 * group on that interface. Responders answer a query from a port other than 5353 by unicast
 * to that port at once (§6.7), so the answer reaches this socket alone, even with several
 * nodes on one host, and the one second that §6 puts between two multicasts of a record
 * does not hold it back. Joins no group: it hears only the answers sent to it.
 */
export async function openOneShotSocket(
  interfaceAddress: string | null,
): Promise<MulticastSocket> {
  const [{ default: multicastDns }, { default: dgram }] = await Promise.all([
    import("multicast-dns"),
    import("node:dgram"),
  ]);
  const udp = dgram.createSocket({ type: "udp4" });
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(0, interfaceAddress ?? "0.0.0.0", () => {
      udp.off("error", reject);
      resolve();
    });
  });
  try {
    udp.setMulticastTTL(255);
    if (interfaceAddress !== null) udp.setMulticastInterface(interfaceAddress);
  } catch (error) {
    udp.close();
    throw error;
  }
  // `bind: false`: the socket is bound already; queries go to the group's port 5353.
  return multicastDns({
    socket: udp,
    port: MDNS_PORT,
    ip: MDNS_GROUP_V4,
    multicast: false,
    bind: false,
  }) as unknown as MulticastSocket;
}

/** Sends `packet` as a response, resolving once it is sent (errors are returned, not thrown). */
export function sendResponse(
  socket: MulticastSocket,
  packet: Partial<DnsPacket>,
  to: RemoteInfo | null = null,
): Promise<Error | null> {
  return new Promise((resolve) => socket.respond(packet, to, (error) => resolve(error ?? null)));
}

/**
 * `handler`, made safe for a socket listener: a packet from the network that makes it
 * throw is reported to `onError` instead of ending the process.
 */
export function guarded(
  handler: (packet: DnsPacket, from: RemoteInfo) => void,
  onError: (error: unknown) => void,
): (packet: DnsPacket, from: RemoteInfo) => void {
  return (packet, from) => {
    try {
      handler(packet, from);
    } catch (error) {
      onError(error);
    }
  };
}
