/**
 * Helpers for tests of the transport and of the code built on it: endpoints on loopback
 * with ports from the OS, a peer address where nothing listens, and waiting for an event,
 * a condition or a promise with a bound, so that a broken test fails instead of hanging.
 * Production code does not import this module.
 *
 * @module
 */

import type { FramedStream } from "./framed_stream.ts";
import type { P2pConnection } from "./p2p_connection.ts";
import {
  P2pEndpoint,
  type P2pEndpointOptions,
  type P2pEvent,
  type PeerAddress,
} from "./p2p_endpoint.ts";

/** Echoes every frame of every stream `connection` carries back, then finishes the stream. */
export async function echo(connection: P2pConnection): Promise<void> {
  for (;;) {
    const stream = await connection.acceptStream();
    if (stream === null) return;
    (async () => {
      for (;;) {
        const value = await stream.receive();
        if (value === null) return await stream.finish();
        await stream.send(value);
      }
    })().catch(() => {});
  }
}

/** Binds an endpoint with a fresh identity on `127.0.0.1` and a port the OS picks. */
export function bindLoopbackEndpoint(
  options?: Pick<P2pEndpointOptions, "incomingConnectionsMax" | "nativeCalls">,
): Promise<P2pEndpoint> {
  return P2pEndpoint.bind({
    secretKey: crypto.getRandomValues(new Uint8Array(32)),
    bindAddress: "127.0.0.1:0",
    relayUrl: null,
    ...options,
  });
}

/** How to reach `endpoint`. */
export function peerAddressOf(endpoint: P2pEndpoint): PeerAddress {
  return { p2pNodeId: endpoint.nodeId, addresses: endpoint.addresses(), relayUrl: null };
}

/**
 * The address of an endpoint that existed and is closed: a valid P2P id at a UDP port
 * where nothing answers, so a connect there waits until its deadline.
 */
export async function deadPeerAddress(): Promise<PeerAddress> {
  const endpoint = await bindLoopbackEndpoint();
  const peer = peerAddressOf(endpoint);
  await endpoint.close();
  return peer;
}

/** Resolves with the first event of `endpoint` that satisfies `matches`. */
export function nextEvent(
  endpoint: P2pEndpoint,
  matches: (event: P2pEvent) => boolean,
): Promise<P2pEvent> {
  return new Promise((resolve) => {
    const stop = endpoint.onEvent((event) => {
      if (!matches(event)) return;
      stop();
      resolve(event);
    });
  });
}

/** How long `eventually` and `within` wait by default: generous, since tests wait for progress. */
export const WAIT_TIMEOUT_MS_DEFAULT = 10_000;

/**
 * Polls `condition` every 5 ms until it holds, calling `options.every` before each wait;
 * rejects naming `what` if it does not hold within `options.timeoutMs`.
 */
export async function eventually(
  what: string,
  condition: () => boolean,
  options: { timeoutMs?: number; every?: () => void } = {},
): Promise<void> {
  const deadline = performance.now() + (options.timeoutMs ?? WAIT_TIMEOUT_MS_DEFAULT);
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    options.every?.();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** `promise`, or a rejection naming `what` when it does not settle within `timeoutMs`. */
export async function within<T>(
  what: string,
  promise: Promise<T>,
  timeoutMs = WAIT_TIMEOUT_MS_DEFAULT,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The protocol `withStreamPair` connects with. */
const STREAM_PAIR_ALPN = "blixard/test/1";

/**
 * Runs `body` with the two ends of one stream between two loopback endpoints: `local`
 * opened it, `remote` accepted it. The first frame `local` sends is a greeting that makes
 * the stream known to `remote`. Closes both endpoints afterwards, even when `body` throws.
 */
export async function withStreamPair(
  body: (local: FramedStream, remote: FramedStream) => Promise<void>,
  remoteOptions?: { frameBytesMax: number },
): Promise<void> {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    const accepted = Promise.withResolvers<FramedStream>();
    server.handle(STREAM_PAIR_ALPN, async (connection) => {
      const stream = await connection.acceptStream();
      if (stream !== null) accepted.resolve(stream);
    }, remoteOptions);
    const connection = await client.connect(peerAddressOf(server), STREAM_PAIR_ALPN, {
      timeoutMs: 5000,
    });
    const local = await connection.openStream();
    await local.send("hello");
    const remote = await accepted.promise;
    const greeting = await remote.receive();
    if (greeting !== "hello") throw new Error(`expected the greeting, received ${greeting}`);
    await body(local, remote);
  } finally {
    await client.close();
    await server.close();
  }
}
