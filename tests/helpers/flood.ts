/**
 * Floods for the tests of DESIGN.md section 8 ("a stranger must never be able to lock out an
 * operator or a joiner"): a stranger on another source address (`ATTACKER_HOST`, 127.0.0.2,
 * standing in for another machine) sends requests as fast as it can while the test runs an
 * operator's commands from 127.0.0.1.
 *
 * Every flood is bounded in count and in time, and sends only to loopback.
 *
 * @module
 */

import net from "node:net";
import { P2pEndpoint, type PeerAddress } from "../../src/transport/p2p_endpoint.ts";
import type { NodeProcess } from "./node_process.ts";

/** The stranger's source address. */
export const ATTACKER_HOST = "127.0.0.2";
/** The longest any flood runs, whatever its caller does. */
const FLOOD_DURATION_MS_MAX = 60_000;

/** What a flood did so far. */
export interface FloodCounts {
  /** Requests sent. */
  sent: number;
  /** Requests that succeeded (the node did the work). */
  succeeded: number;
  /** Requests refused or failed. */
  refused: number;
}

/** A running flood; `stop()` ends it and waits for the requests in flight. */
export interface Flood {
  readonly counts: FloodCounts;
  /** Waits until at least `sent` requests were sent (or the flood ended). */
  waitForSent(sent: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs `send` in `concurrency` loops until `stop()`, `countMax` sends, or
 * `FLOOD_DURATION_MS_MAX`. `send` resolves `true` when the node did the work.
 */
export function startFlood(
  send: () => Promise<boolean>,
  options: { concurrency: number; countMax: number },
): Flood {
  const counts: FloodCounts = { sent: 0, succeeded: 0, refused: 0 };
  const deadlineMs = performance.now() + FLOOD_DURATION_MS_MAX;
  let stopping = false;
  const running = () =>
    !stopping && counts.sent < options.countMax && performance.now() < deadlineMs;
  const loop = async () => {
    while (running()) {
      counts.sent++;
      const succeeded = await send().catch(() => false);
      if (succeeded) counts.succeeded++;
      else counts.refused++;
    }
  };
  const loops = Array.from({ length: options.concurrency }, loop);
  return {
    counts,
    async waitForSent(sent: number) {
      while (running() && counts.sent < sent) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/** Floods `GET path` on `node`'s HTTP port from `ATTACKER_HOST`. */
export function floodHttp(
  node: NodeProcess,
  path: string,
  options: { concurrency: number; countMax: number },
): Flood {
  const client = Deno.createHttpClient({ localAddress: ATTACKER_HOST });
  const url = `http://127.0.0.1:${node.httpPort}${path}`;
  const flood = startFlood(async () => {
    const response = await fetch(url, { client });
    await response.body?.cancel();
    return response.ok;
  }, options);
  return { ...flood, stop: () => flood.stop().finally(() => client.close()) };
}

/** An Iroh endpoint of the stranger, on `ATTACKER_HOST`, with a fresh key. */
export async function attackerEndpoint(): Promise<P2pEndpoint> {
  return await P2pEndpoint.bind({
    secretKey: crypto.getRandomValues(new Uint8Array(32)),
    bindAddress: `${ATTACKER_HOST}:0`,
    relayUrl: null,
  });
}

/** `node`'s P2P address, as its `/bootstrap` gives it. */
export async function peerAddressOf(node: NodeProcess): Promise<PeerAddress> {
  const info = await node.getJson("/bootstrap");
  return {
    p2pNodeId: info.p2p_node_id as string,
    addresses: info.p2p_addresses as string[],
    relayUrl: null,
  };
}

/**
 * Opens `count` TCP connections from `ATTACKER_HOST` to `port` and sends `head` on each (a
 * request that never ends); returns a function that closes them all.
 */
export async function holdHalfSentRequests(
  port: number,
  options: { count: number; head: string },
): Promise<{ connected: number; stillOpen: () => number; close: () => void }> {
  const sockets: net.Socket[] = [];
  const connected = await Promise.all(
    Array.from({ length: options.count }, () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port, localAddress: ATTACKER_HOST });
        sockets.push(socket);
        socket.setTimeout(30_000, () => socket.destroy());
        socket.on("connect", () => {
          socket.write(options.head);
          resolve(true);
        });
        socket.on("error", () => resolve(false));
        socket.on("close", () => resolve(false));
      })),
  );
  return {
    connected: connected.filter((ok) => ok).length,
    stillOpen: () => sockets.filter((socket) => !socket.destroyed && !socket.readableEnded).length,
    close: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}
