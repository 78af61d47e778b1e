import assert from "node:assert/strict";
import { z } from "zod";
import { RPC_ALPN, RPC_ALPN_BYTES } from "./alpn.ts";
import { encodeFrame, FrameDecoder } from "./frame_codec.ts";
import { StreamErrorCode } from "./framed_stream.ts";
import {
  describeIrohError,
  Endpoint,
  EndpointAddr,
  EndpointId,
  presetMinimal,
  RelayMode,
} from "./iroh.ts";
import type { P2pConnection } from "./p2p_connection.ts";
import type { P2pEndpoint } from "./p2p_endpoint.ts";
import { PING_RPC, pingHandler } from "./ping_rpc.ts";
import { defineRpc, RpcClient, RpcError, RpcServer, type RpcServerOptions } from "./rpc.ts";
import { bindLoopbackEndpoint, nextEvent, peerAddressOf } from "./testing.ts";

const WAIT_RPC = defineRpc({
  method: "wait",
  request: () => z.strictObject({ id: z.number().int().min(0) }),
  response: () => z.strictObject({ id: z.number() }),
});

interface Harness {
  server: P2pEndpoint;
  client: P2pEndpoint;
  rpcServer: RpcServer;
  rpcClient: RpcClient;
  /** Incoming RPC connections on the server, in order of arrival. */
  accepted: P2pConnection[];
}

/** A server endpoint with `ping` (node id 1) and a client, closed whatever `body` does. */
async function withRpc(
  body: (harness: Harness) => Promise<void>,
  options?: RpcServerOptions,
): Promise<void> {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  const rpcServer = new RpcServer(options);
  const rpcClient = new RpcClient(client);
  const accepted: P2pConnection[] = [];
  try {
    rpcServer.register(PING_RPC, pingHandler({ nodeId: 1, p2pNodeId: server.nodeId }));
    server.handle(RPC_ALPN, (connection) => {
      accepted.push(connection);
      return rpcServer.serveConnection(connection);
    });
    await body({ server, client, rpcServer, rpcClient, accepted });
  } finally {
    await rpcClient.close();
    await client.close();
    await server.close();
  }
}

function isRpcError(code: string, message?: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof RpcError && error.code === code &&
    (message === undefined || message.test(error.message));
}

Deno.test("RpcClient.call(ping) answers with the server's node id and P2P id", async () => {
  await withRpc(async ({ server, rpcClient }) => {
    const answer = await rpcClient.call(peerAddressOf(server), PING_RPC, {}, { timeoutMs: 5000 });
    assert.deepStrictEqual(answer, { nodeId: 1, p2pNodeId: server.nodeId });
  });
});

Deno.test("RpcClient reuses one connection per peer and reconnects once it has closed", async () => {
  await withRpc(async ({ server, client, rpcClient, accepted }) => {
    const peer = peerAddressOf(server);
    const calls = [1, 2, 3].map(() => rpcClient.call(peer, PING_RPC, {}, { timeoutMs: 5000 }));
    await Promise.all(calls);
    assert.equal(accepted.length, 1);
    const noticed = nextEvent(client, (event) => event.type === "connection_closed");
    accepted[0]!.close("server restarts");
    await noticed;
    await rpcClient.call(peer, PING_RPC, {}, { timeoutMs: 5000 });
    assert.equal(accepted.length, 2);
  });
});

Deno.test("RpcServer answers unknown_method for a method it does not serve", async () => {
  await withRpc(async ({ server, rpcClient }) => {
    await assert.rejects(
      rpcClient.call(peerAddressOf(server), WAIT_RPC, { id: 1 }, { timeoutMs: 5000 }),
      isRpcError("unknown_method", /no method "wait"/),
    );
  });
});

Deno.test("RpcServer validates the request body and names the offending field", async () => {
  await withRpc(async ({ server, rpcServer, rpcClient }) => {
    rpcServer.register(WAIT_RPC, ({ id }) => ({ id }));
    // A client whose schema is looser than the server's, as after a version skew.
    const loose = defineRpc({
      method: WAIT_RPC.method,
      request: () => z.object({ id: z.number() }),
      response: () => WAIT_RPC.response,
    });
    await assert.rejects(
      rpcClient.call(peerAddressOf(server), loose, { id: -1 }, { timeoutMs: 5000 }),
      isRpcError("invalid_request", /field id/),
    );
    await assert.rejects(
      rpcClient.call(peerAddressOf(server), WAIT_RPC, { id: -1 }, { timeoutMs: 5000 }),
      isRpcError("invalid_request", /not sent: field id/),
    );
  });
});

Deno.test("RpcClient refuses a response that does not match the method's schema", async () => {
  await withRpc(async ({ server, rpcServer, rpcClient }) => {
    rpcServer.register(WAIT_RPC, ({ id }) => ({ id }));
    const strict = defineRpc({
      method: WAIT_RPC.method,
      request: () => WAIT_RPC.request,
      response: () => z.strictObject({ id: z.string() }),
    });
    await assert.rejects(
      rpcClient.call(peerAddressOf(server), strict, { id: 4 }, { timeoutMs: 5000 }),
      isRpcError("invalid_response", /field id/),
    );
  });
});

Deno.test("RpcServer answers deadline_exceeded at its deadline and aborts the handler", async () => {
  await withRpc(async ({ server, rpcServer, rpcClient }) => {
    const aborted = Promise.withResolvers<void>();
    rpcServer.register(WAIT_RPC, (_request, { signal }) =>
      new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () => {
          aborted.resolve();
          reject(signal.reason);
        });
      }));
    await assert.rejects(
      rpcClient.call(peerAddressOf(server), WAIT_RPC, { id: 1 }, { timeoutMs: 10_000 }),
      isRpcError("deadline_exceeded", /the server's deadline of 50 ms passed/),
    );
    await aborted.promise;
  }, { requestTimeoutMs: 50 });
});

Deno.test("RpcClient.call() gives up at its own deadline when the server is slower", async () => {
  await withRpc(async ({ server, rpcServer, rpcClient }) => {
    const serverGaveUp = Promise.withResolvers<void>();
    rpcServer.register(WAIT_RPC, (_request, { signal }) =>
      new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () => {
          serverGaveUp.resolve();
          reject(signal.reason);
        });
      }));
    // Connected already, so the whole 100 ms go to the call. The client's deadline starts
    // first and is shorter than the server's, so it always fires first.
    await rpcClient.call(peerAddressOf(server), PING_RPC, {}, { timeoutMs: 5000 });
    await assert.rejects(
      rpcClient.call(peerAddressOf(server), WAIT_RPC, { id: 1 }, { timeoutMs: 100 }),
      isRpcError("deadline_exceeded", /no answer within 100 ms/),
    );
    await serverGaveUp.promise;
  }, { requestTimeoutMs: 300 });
});

Deno.test("RpcServer answers overloaded beyond concurrentRequestsMax", async () => {
  await withRpc(async ({ server, rpcServer, rpcClient }) => {
    const started = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    rpcServer.register(WAIT_RPC, async ({ id }) => {
      started.resolve();
      await release.promise;
      return { id };
    });
    const peer = peerAddressOf(server);
    const first = rpcClient.call(peer, WAIT_RPC, { id: 1 }, { timeoutMs: 5000 });
    await started.promise;
    await assert.rejects(
      rpcClient.call(peer, WAIT_RPC, { id: 2 }, { timeoutMs: 5000 }),
      isRpcError("overloaded"),
    );
    release.resolve();
    assert.deepStrictEqual(await first, { id: 1 });
    assert.equal(rpcServer.activeRequests, 0);
  }, { concurrentRequestsMax: 1 });
});

Deno.test("RpcServer sends a handler's RpcError code, and hides other errors as internal", async () => {
  await withRpc(async ({ server, rpcServer, rpcClient }) => {
    rpcServer.register(WAIT_RPC, ({ id }) => {
      if (id === 1) throw new RpcError("not_leader", "node 3 leads");
      throw new Error("secret path /var/lib/blixard");
    });
    const peer = peerAddressOf(server);
    await assert.rejects(
      rpcClient.call(peer, WAIT_RPC, { id: 1 }, { timeoutMs: 5000 }),
      (error) =>
        isRpcError("not_leader", /node 3 leads/)(error) &&
        (error as RpcError).remoteMessage === "node 3 leads",
    );
    await assert.rejects(
      rpcClient.call(peer, WAIT_RPC, { id: 2 }, { timeoutMs: 5000 }),
      (error) => isRpcError("internal")(error) && !(error as Error).message.includes("secret"),
    );
  });
});

Deno.test("RpcServer resets a stream with a malformed frame, answers one without a request, and keeps serving", async () => {
  await withRpc(async ({ server, rpcClient }) => {
    const builder = Endpoint.builder();
    presetMinimal(builder);
    builder.relayMode(RelayMode.disabled());
    builder.bindAddr("127.0.0.1:0");
    const raw = await builder.bind();
    try {
      const address = new EndpointAddr(
        EndpointId.fromString(server.nodeId),
        null,
        server.addresses(),
      );
      const connection = await raw.connect(address, Array.from(RPC_ALPN_BYTES));
      const garbage = await connection.openBi();
      // A frame announcing two bytes that hold a truncated msgpack array.
      await garbage.send.writeAll([0, 0, 0, 2, 0x92, 0x01]);
      await garbage.send.finish();
      await assert.rejects(
        garbage.recv.read(1024),
        (error) => describeIrohError(error) === `Reset(${StreamErrorCode.malformedFrame})`,
      );
      const empty = await connection.openBi();
      await empty.send.finish();
      const [refusal] = new FrameDecoder().push(new Uint8Array(await empty.recv.readToEnd(4096)));
      assert.deepStrictEqual(refusal, {
        type: "rpc_response",
        ok: false,
        error: { code: "invalid_request", message: "0 request frames on the stream; expected one" },
      });
      const valid = await connection.openBi();
      await valid.send.writeAll(
        Array.from(encodeFrame({ type: "rpc_request", method: "ping", body: {} })),
      );
      await valid.send.finish();
      assert.ok((await valid.recv.readToEnd(4096)).length > 4);
      const answer = await rpcClient.call(peerAddressOf(server), PING_RPC, {}, { timeoutMs: 5000 });
      assert.equal(answer.p2pNodeId, server.nodeId);
    } finally {
      await raw.close();
    }
  });
});

Deno.test("pingHandler() refuses an identity that ping could not answer with", () => {
  assert.throws(() => pingHandler({ nodeId: 0, p2pNodeId: "0".repeat(64) }));
  assert.throws(() => pingHandler({ nodeId: 1, p2pNodeId: "not an id" }));
});

Deno.test("RpcServer sends a handler's retry-after with its error, and the caller's RpcError carries it", async () => {
  await withRpc(async ({ server, rpcServer, rpcClient }) => {
    rpcServer.register(WAIT_RPC, ({ id }) => {
      if (id === 1) throw new RpcError("busy", "4 joins queued", { retryAfterMs: 250 });
      throw new RpcError("busy", "no estimate");
    });
    const peer = peerAddressOf(server);
    await assert.rejects(
      rpcClient.call(peer, WAIT_RPC, { id: 1 }, { timeoutMs: 5000 }),
      (error) =>
        isRpcError("busy", /4 joins queued/)(error) && (error as RpcError).retryAfterMs === 250,
    );
    await assert.rejects(
      rpcClient.call(peer, WAIT_RPC, { id: 2 }, { timeoutMs: 5000 }),
      (error) => isRpcError("busy")(error) && (error as RpcError).retryAfterMs === null,
    );
  });
});
