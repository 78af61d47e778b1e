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
import { z } from "zod";
import { CHALLENGE_RPC } from "../../src/auth/auth_rpcs.ts";
import { RAFT_ALPN, RPC_ALPN } from "../../src/transport/alpn.ts";
import { JOIN_RPC } from "../../src/transport/cluster_rpcs.ts";
import { PING_RPC } from "../../src/transport/ping_rpc.ts";
import {
  defineRpc,
  RPC_FRAME_BYTES_MAX,
  RpcClient,
  type RpcError,
} from "../../src/transport/rpc.ts";
import type { FramedStream } from "../../src/transport/framed_stream.ts";
import type { P2pConnection } from "../../src/transport/p2p_connection.ts";
import { P2pEndpoint, type PeerAddress } from "../../src/transport/p2p_endpoint.ts";
import type { NodeProcess } from "./node_process.ts";

/** What a flood needs of the node it floods: a `NodeProcess`, or its HTTP port from afar. */
export type FloodTarget = Pick<NodeProcess, "httpPort" | "getJson">;

/** The stranger's source address. */
export const ATTACKER_HOST = "127.0.0.2";
/** The longest any flood runs, whatever its caller does. */
const FLOOD_DURATION_MS_MAX = 60_000;
/** Bound on one flood request: a send that never ends would hold `stop()` for ever. */
const FLOOD_SEND_TIMEOUT_MS = 15_000;

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
  node: FloodTarget,
  path: string,
  options: { concurrency: number; countMax: number },
): Flood {
  const client = Deno.createHttpClient({ localAddress: ATTACKER_HOST });
  const url = `http://127.0.0.1:${node.httpPort}${path}`;
  const flood = startFlood(async () => {
    const response = await fetch(url, {
      client,
      signal: AbortSignal.timeout(FLOOD_SEND_TIMEOUT_MS),
    });
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

/** `count` endpoints of the stranger, each with a key of its own. */
export async function attackerEndpoints(count: number): Promise<P2pEndpoint[]> {
  const endpoints: P2pEndpoint[] = [];
  for (let index = 0; index < count; index++) endpoints.push(await attackerEndpoint());
  return endpoints;
}

/** `node`'s P2P address, as its `/bootstrap` gives it. */
export async function peerAddressOf(node: FloodTarget): Promise<PeerAddress> {
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

/** Connections and endpoints a stranger holds open; `close()` lets go of them all. */
export interface HeldConnections {
  /** The connections the node accepted (and has not closed yet, when they were counted). */
  readonly connections: P2pConnection[];
  /** Connects that failed or were closed by the node at once. */
  readonly refused: number;
  close(): Promise<void>;
}

/**
 * Opens `perKey` `blixard/rpc/1` connections to `node` from each of `keys` strangers' keys
 * on `ATTACKER_HOST`, and holds them. A connection counts as refused when the connect
 * fails or the node closes it within a moment.
 */
export async function holdConnections(
  node: FloodTarget,
  options: { keys: number; perKey: number },
): Promise<HeldConnections> {
  const peer = await peerAddressOf(node);
  const endpoints = await attackerEndpoints(options.keys);
  const attempts = endpoints.flatMap((endpoint) =>
    Array.from(
      { length: options.perKey },
      () => endpoint.connect(peer, RPC_ALPN, { timeoutMs: 10_000 }),
    )
  );
  const connections: P2pConnection[] = [];
  let refused = 0;
  for (const attempt of await Promise.allSettled(attempts)) {
    if (attempt.status === "fulfilled") connections.push(attempt.value);
    else refused++;
  }
  // A connection the node refuses after the handshake closes at once.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const open = connections.filter((connection) => !connection.isClosed);
  return {
    connections: open,
    refused: refused + connections.length - open.length,
    close: async () => {
      for (const connection of connections) connection.close("test done");
      for (const endpoint of endpoints) await endpoint.close();
    },
  };
}

/**
 * On each of `connections`, opens `streams` streams that each carry one whole request
 * frame (`ping`) but never finish, so that the node waits for the end of each request.
 * Resolves with the number of streams opened.
 */
export async function openUnfinishedStreams(
  connections: readonly P2pConnection[],
  streams: number,
): Promise<{ opened: number; streams: FramedStream[] }> {
  const opened: FramedStream[] = [];
  await Promise.all(connections.map(async (connection) => {
    for (let index = 0; index < streams; index++) {
      try {
        const stream = await withTimeout(connection.openStream(), 2_000);
        await withTimeout(stream.send({ type: "rpc_request", method: "ping", body: {} }), 2_000);
        opened.push(stream);
      } catch {
        return; // the node refused more streams on this connection
      }
    }
  }));
  return { opened: opened.length, streams: opened };
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** A flood of RPCs from several strangers' keys; `close()` stops it and lets go of the keys. */
export interface RpcFlood {
  readonly flood: Flood;
  close(): Promise<void>;
}

/**
 * Floods `node` with `call` from `keys` strangers' keys on `ATTACKER_HOST`, each of which
 * first tries to reach the node with a `ping` (or the flood would only flood its own
 * connects); a refused stranger does not end the flood.
 */
export async function floodRpc(
  node: FloodTarget,
  options: {
    keys: number;
    concurrency: number;
    countMax: number;
    call: (client: RpcClient, peer: PeerAddress) => Promise<unknown>;
  },
): Promise<RpcFlood> {
  const peer = await peerAddressOf(node);
  const endpoints = await attackerEndpoints(options.keys);
  const clients = endpoints.map((endpoint) => new RpcClient(endpoint));
  // The node may refuse a stranger already (it caps strangers' connections, and those of a
  // flood that just ended may still count): the flood goes on, its calls count refusals.
  for (const client of clients) {
    await client.call(peer, PING_RPC, {}, { timeoutMs: 15_000 }).catch(() => {});
  }
  let next = 0;
  const flood = startFlood(async () => {
    await options.call(clients[next++ % clients.length]!, peer);
    return true;
  }, options);
  return {
    flood,
    close: async () => {
      await flood.stop();
      for (const client of clients) await client.close();
      for (const endpoint of endpoints) await endpoint.close();
    },
  };
}

/** `cluster.challenge` with a fresh nonce, as a stranger asks for one. */
export async function askChallenge(client: RpcClient, peer: PeerAddress): Promise<void> {
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  await client.call(peer, CHALLENGE_RPC, { nonce }, { timeoutMs: 5_000 });
}

/**
 * `cluster.join` as a stranger asks it (no proof of the secret), naming the node's own P2P
 * id (a valid one; the gate refuses before it looks); resolves either way.
 */
export async function askToJoin(client: RpcClient, peer: PeerAddress): Promise<void> {
  const member = {
    nodeId: 1_000 + Math.floor(Math.random() * 1_000),
    p2pNodeId: peer.p2pNodeId,
    addresses: [`${ATTACKER_HOST}:9`],
    relayUrl: null,
  };
  await client.call(peer, JOIN_RPC, { member }, { timeoutMs: 5_000 });
}

/** `kv.put` with a body the client does not check: the stranger's oversized request. */
const OVERSIZED_PUT_RPC = defineRpc({
  method: "kv.put",
  request: () => z.strictObject({ key: z.string(), blob: z.instanceof(Uint8Array) }),
  response: () => z.unknown(),
});

/**
 * Sends a request of almost 1 MiB (the largest frame a member may send) without having
 * proved the secret; resolves with the error the node answered with (`null` if none).
 */
export async function sendOversizedRequest(
  client: RpcClient,
  peer: PeerAddress,
): Promise<RpcError | null> {
  const blob = new Uint8Array(RPC_FRAME_BYTES_MAX - 1024);
  return await client.call(peer, OVERSIZED_PUT_RPC, { key: "k", blob }, { timeoutMs: 15_000 })
    .then(() => null, (error) => error);
}

/** Opens `count` `blixard/raft/1` connections to `node` from strangers' keys, one at a time. */
export async function connectRaftAsStranger(
  node: FloodTarget,
  options: { count: number; keys: number },
): Promise<void> {
  const peer = await peerAddressOf(node);
  const endpoints = await attackerEndpoints(options.keys);
  try {
    for (let index = 0; index < options.count; index++) {
      const endpoint = endpoints[index % endpoints.length]!;
      const connection = await endpoint.connect(peer, RAFT_ALPN, { timeoutMs: 10_000 })
        .catch(() => null);
      await connection?.closed;
    }
  } finally {
    for (const endpoint of endpoints) await endpoint.close();
  }
}
