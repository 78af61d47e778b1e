import assert from "node:assert/strict";
import { z } from "zod";
import { RPC_ALPN } from "../transport/alpn.ts";
import type { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { defineRpc, RpcClient, RpcError, RpcServer } from "../transport/rpc.ts";
import { bindLoopbackEndpoint, peerAddressOf } from "../transport/testing.ts";
import { CHALLENGE_RPC, SERVER_UNPROVEN } from "./auth_rpcs.ts";
import { AuthenticatingRpcClient } from "./authenticate.ts";
import { ClusterSecret } from "./cluster_secret.ts";
import { SecretGate } from "./secret_gate.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("the cluster secret of the test"));
const OTHER_SECRET = await ClusterSecret.fromBytes(
  encoder.encode("another secret, also 30 bytes!"),
);

const COUNT_RPC = defineRpc({
  method: "test.count",
  request: () => z.strictObject({}),
  response: () => z.strictObject({ calls: z.number() }),
});

/** A node-like server over real Iroh: a gate, and one guarded method that counts its calls. */
async function withGatedServer(
  body: (
    server: {
      endpoint: P2pEndpoint;
      gate: SecretGate;
      challenges: () => number;
      calls: () => number;
      members: Set<string>;
    },
  ) => Promise<void>,
): Promise<void> {
  const endpoint = await bindLoopbackEndpoint();
  const rpcServer = new RpcServer();
  const members = new Set<string>();
  const gate = new SecretGate({
    secret: SECRET,
    selfP2pNodeId: endpoint.nodeId,
    isMember: (p2pNodeId) => members.has(p2pNodeId),
  });
  let challenges = 0;
  gate.register({
    register: (definition, handler) =>
      rpcServer.register(definition, (request, context) => {
        if (definition.method === CHALLENGE_RPC.method) challenges++;
        return handler(request, context);
      }),
  });
  let calls = 0;
  gate.guard(rpcServer).register(COUNT_RPC, () => ({ calls: ++calls }));
  endpoint.handle(RPC_ALPN, (connection) => rpcServer.serveConnection(connection));
  try {
    await body({ endpoint, gate, challenges: () => challenges, calls: () => calls, members });
  } finally {
    await endpoint.close();
  }
}

async function withClient<Client extends RpcClient>(
  create: (endpoint: P2pEndpoint) => Client,
  body: (client: Client, endpoint: P2pEndpoint) => Promise<void>,
): Promise<void> {
  const endpoint = await bindLoopbackEndpoint();
  const client = create(endpoint);
  try {
    await body(client, endpoint);
  } finally {
    await client.close();
    await endpoint.close();
  }
}

Deno.test("AuthenticatingRpcClient checks the node's proof and proves its own before its first call, once", async () => {
  await withGatedServer(async (server) => {
    await withClient(
      (endpoint) => new AuthenticatingRpcClient(endpoint, { secret: SECRET }),
      async (client, endpoint) => {
        const peer = peerAddressOf(server.endpoint);
        assert.deepStrictEqual(await client.call(peer, COUNT_RPC, {}, { timeoutMs: 5_000 }), {
          calls: 1,
        });
        assert.equal(server.gate.admits(endpoint.nodeId), true);
        assert.deepStrictEqual(await client.call(peer, COUNT_RPC, {}, { timeoutMs: 5_000 }), {
          calls: 2,
        });
        assert.equal(server.challenges(), 1, "authenticated once");
      },
    );
  });
});

Deno.test("AuthenticatingRpcClient shares one authentication among concurrent first calls", async () => {
  await withGatedServer(async (server) => {
    await withClient(
      (endpoint) => new AuthenticatingRpcClient(endpoint, { secret: SECRET }),
      async (client) => {
        const peer = peerAddressOf(server.endpoint);
        const answers = await Promise.all(
          Array.from({ length: 8 }, () => client.call(peer, COUNT_RPC, {}, { timeoutMs: 5_000 })),
        );
        assert.deepStrictEqual(answers.map((answer) => answer.calls).sort((a, b) => a - b), [
          1,
          2,
          3,
          4,
          5,
          6,
          7,
          8,
        ]);
        assert.equal(server.challenges(), 1);
      },
    );
  });
});

Deno.test("a client without the secret is refused unauthenticated, and one with another secret sends nothing: server_unproven", async () => {
  await withGatedServer(async (server) => {
    const peer = peerAddressOf(server.endpoint);
    await withClient((endpoint) => new RpcClient(endpoint), async (client, endpoint) => {
      await assert.rejects(
        client.call(peer, COUNT_RPC, {}, { timeoutMs: 5_000 }),
        (error) => error instanceof RpcError && error.code === "unauthenticated",
      );
      assert.equal(server.gate.admits(endpoint.nodeId), false);
    });
    await withClient(
      (endpoint) => new AuthenticatingRpcClient(endpoint, { secret: OTHER_SECRET }),
      async (client, endpoint) => {
        await assert.rejects(
          client.call(peer, COUNT_RPC, {}, { timeoutMs: 5_000 }),
          (error) => error instanceof RpcError && error.code === SERVER_UNPROVEN,
        );
        assert.equal(server.gate.admits(endpoint.nodeId), false);
        assert.equal(server.calls(), 0);
      },
    );
  });
});

Deno.test("AuthenticatingRpcClient sends nothing to a node that holds the key but not the secret", async () => {
  const endpoint = await bindLoopbackEndpoint();
  const impostor = new RpcServer();
  let calls = 0;
  impostor.register(COUNT_RPC, () => ({ calls: ++calls }));
  impostor.serve(endpoint);
  try {
    await withClient(
      (clientEndpoint) => new AuthenticatingRpcClient(clientEndpoint, { secret: SECRET }),
      async (client) => {
        await assert.rejects(
          client.call(peerAddressOf(endpoint), COUNT_RPC, {}, { timeoutMs: 5_000 }),
          (error) =>
            error instanceof RpcError && error.code === SERVER_UNPROVEN &&
            /did not prove the cluster secret \(it has no cluster secret\)/.test(error.message),
        );
        assert.equal(calls, 0, "the request never reached the impostor");
      },
    );
  } finally {
    await endpoint.close();
  }
});

Deno.test("AuthenticatingRpcClient calls a fellow member without a proof either way, as Raft trusts it", async () => {
  await withGatedServer(async (server) => {
    await withClient(
      (endpoint) =>
        new AuthenticatingRpcClient(endpoint, {
          secret: OTHER_SECRET,
          isKnownMember: (p2pNodeId) => p2pNodeId === server.endpoint.nodeId,
        }),
      async (client, endpoint) => {
        server.members.add(endpoint.nodeId);
        const peer = peerAddressOf(server.endpoint);
        assert.deepStrictEqual(await client.call(peer, COUNT_RPC, {}, { timeoutMs: 5_000 }), {
          calls: 1,
        });
        assert.equal(server.challenges(), 0, "no proof asked or given, though the secrets differ");
      },
    );
  });
});
