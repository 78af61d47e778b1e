import assert from "node:assert/strict";
import { z } from "zod";
import { RPC_ALPN } from "./alpn.ts";
import type { P2pConnection } from "./p2p_connection.ts";
import { P2pEndpoint } from "./p2p_endpoint.ts";
import { PING_RPC, pingHandler } from "./ping_rpc.ts";
import { defineRpc, RpcClient, RpcError, RpcServer } from "./rpc.ts";
import type { StrangerLimits } from "./stranger_limits.ts";
import { bindLoopbackEndpoint, eventually, peerAddressOf, within } from "./testing.ts";

const ECHO_RPC = defineRpc({
  method: "echo",
  request: () => z.strictObject({ bytes: z.instanceof(Uint8Array) }),
  response: () => z.strictObject({ length: z.number() }),
});

const HOLD_RPC = defineRpc({
  method: "hold",
  request: () => z.strictObject({}),
  response: () => z.strictObject({}),
});

interface Harness {
  server: P2pEndpoint;
  rpcServer: RpcServer;
  /** Keys the server trusts; tests add to it. */
  trusted: Set<string>;
  /** Releases every `hold` call in progress. */
  release(): void;
  /** A client on a fresh key. */
  newClient(): Promise<{ endpoint: P2pEndpoint; rpc: RpcClient }>;
}

async function withServer(
  limits: Partial<StrangerLimits>,
  body: (harness: Harness) => Promise<void>,
): Promise<void> {
  const trusted = new Set<string>();
  const isTrusted = (key: string) => trusted.has(key);
  const server = await P2pEndpoint.bind({
    secretKey: crypto.getRandomValues(new Uint8Array(32)),
    bindAddress: "127.0.0.1:0",
    relayUrl: null,
    isTrusted,
    strangerLimits: limits,
  });
  const rpcServer = new RpcServer({ isTrusted, strangerLimits: limits });
  rpcServer.register(PING_RPC, pingHandler({ nodeId: 1, p2pNodeId: server.nodeId }));
  rpcServer.register(ECHO_RPC, (request) => ({ length: request.bytes.length }));
  let releases: (() => void)[] = [];
  rpcServer.register(HOLD_RPC, () => new Promise((resolve) => releases.push(() => resolve({}))));
  rpcServer.serve(server);
  const clients: { endpoint: P2pEndpoint; rpc: RpcClient }[] = [];
  const release = () => {
    for (const resolve of releases) resolve();
    releases = [];
  };
  try {
    await body({
      server,
      rpcServer,
      trusted,
      release,
      newClient: async () => {
        const endpoint = await bindLoopbackEndpoint();
        const client = { endpoint, rpc: new RpcClient(endpoint) };
        clients.push(client);
        return client;
      },
    });
  } finally {
    release();
    for (const client of clients) {
      await client.rpc.close();
      await client.endpoint.close();
    }
    await server.close();
  }
}

const CALL = { timeoutMs: 10_000 };

Deno.test("RpcServer refuses a stranger's frame above its small limit at the length prefix, and takes it once the key is trusted", async () => {
  await withServer({ frameBytesMax: 1024 }, async ({ server, trusted, newClient }) => {
    const { endpoint, rpc } = await newClient();
    const peer = peerAddressOf(server);
    const bytes = new Uint8Array(8 * 1024);
    const refused = await rpc.call(peer, ECHO_RPC, { bytes }, CALL).catch((error) => error);
    assert.ok(refused instanceof RpcError, String(refused));
    assert.match(refused.message, /Reset\(1\)|reset by the peer with code 1/);
    assert.deepEqual(await rpc.call(peer, ECHO_RPC, { bytes: bytes.subarray(0, 16) }, CALL), {
      length: 16,
    });
    trusted.add(endpoint.nodeId);
    assert.deepEqual(await rpc.call(peer, ECHO_RPC, { bytes }, CALL), { length: 8 * 1024 });
  });
});

Deno.test("RpcServer holds one source's strangers to requestsPerSourceMax requests in progress, never a trusted key", async () => {
  await withServer(
    { requestsPerSourceMax: 2, requestTimeoutMs: 10_000 },
    async ({ server, rpcServer, trusted, release, newClient }) => {
      const peer = peerAddressOf(server);
      const stranger = await newClient();
      const held = [1, 2].map(() => stranger.rpc.call(peer, HOLD_RPC, {}, CALL));
      await eventually("two stranger requests in progress", () => rpcServer.strangerRequests === 2);
      const another = await newClient();
      const refused = await another.rpc.call(peer, PING_RPC, {}, CALL).catch((error) => error);
      assert.ok(refused instanceof RpcError, String(refused));
      assert.match(refused.message, /Reset\(4\)|reset by the peer with code 4/);
      const member = await newClient();
      trusted.add(member.endpoint.nodeId);
      assert.equal((await member.rpc.call(peer, PING_RPC, {}, CALL)).nodeId, 1);
      release();
      await Promise.all(held);
      assert.equal((await another.rpc.call(peer, PING_RPC, {}, CALL)).nodeId, 1);
      assert.equal(rpcServer.strangerRequests, 0);
    },
  );
});

Deno.test("RpcServer closes a stranger's connection once idle for idleTimeoutMs, not a trusted key's", async () => {
  await withServer({ idleTimeoutMs: 200 }, async ({ server, trusted, newClient }) => {
    const accepted: P2pConnection[] = [];
    server.onEvent((event) => {
      if (event.type === "connection_closed" && event.direction === "incoming") {
        accepted.push({ remoteNodeId: event.remoteNodeId } as P2pConnection);
      }
    });
    const peer = peerAddressOf(server);
    const stranger = await newClient();
    const member = await newClient();
    trusted.add(member.endpoint.nodeId);
    await stranger.rpc.call(peer, PING_RPC, {}, CALL);
    await member.rpc.call(peer, PING_RPC, {}, CALL);
    await eventually("the stranger's connection closed", () => accepted.length === 1);
    assert.equal(accepted[0]!.remoteNodeId, stranger.endpoint.nodeId);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(accepted.length, 1, "the member's connection stays open");
  });
});

Deno.test("P2pEndpoint refuses a stranger's connections beyond the per-key and per-source caps, never a trusted key's", async () => {
  await withServer(
    { connectionsPerKeyMax: 2, connectionsPerSourceMax: 3 },
    async ({ server, trusted, newClient }) => {
      const peer = peerAddressOf(server);
      const connectAll = async (endpoint: P2pEndpoint, count: number) => {
        // Refused before the handshake (per source), the connect fails; after it (per key),
        // the server closes the connection at once.
        const attempts = await Promise.allSettled(
          Array.from({ length: count }, () => endpoint.connect(peer, RPC_ALPN, CALL)),
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        return attempts.filter((attempt) =>
          attempt.status === "fulfilled" && !attempt.value.isClosed
        ).length;
      };
      const first = await newClient();
      assert.equal(await connectAll(first.endpoint, 3), 2, "per key");
      const second = await newClient();
      assert.equal(await connectAll(second.endpoint, 2), 1, "per source: 3 in all");
      assert.ok(server.counters().strangersRefused >= 2);
      const member = await newClient();
      trusted.add(member.endpoint.nodeId);
      assert.equal(await within("member connects", connectAll(member.endpoint, 3)), 3);
    },
  );
});
