/**
 * An in-memory twin of the multicast socket, for tests of the responder and of discovery:
 * it records what they send and delivers packets "from the network" to them. Production
 * code does not import this module.
 *
 * @module
 */

import type { DnsPacket, MulticastSocket, RemoteInfo } from "./multicast_socket.ts";

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

  on(event: string, listener: Listener): void {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
  }

  query(packet: Partial<DnsPacket>, callback?: (error: Error | null) => void): void {
    this.sent.push({ kind: "query", packet: structuredClone(packet), to: null });
    queueMicrotask(() => callback?.(null));
  }

  respond(
    packet: Partial<DnsPacket>,
    to?: RemoteInfo | null,
    callback?: (error: Error | null) => void,
  ): void {
    this.sent.push({ kind: "response", packet: structuredClone(packet), to: to ?? null });
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
