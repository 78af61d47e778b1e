import assert from "node:assert/strict";
import { P2pEndpoint } from "./p2p_endpoint.ts";
import { parseSocketAddress } from "./socket_address.ts";
import { bindLoopbackEndpoint, peerAddressOf } from "./testing.ts";
import { TransportError } from "./transport_error.ts";

const TEST_ALPN = "blixard/test/1";

function bindAt(bindAddress: string, advertiseAddresses?: string[]): Promise<P2pEndpoint> {
  return P2pEndpoint.bind({
    secretKey: crypto.getRandomValues(new Uint8Array(32)),
    bindAddress,
    relayUrl: null,
    ...(advertiseAddresses === undefined ? {} : { advertiseAddresses }),
  });
}

Deno.test("P2pEndpoint bound to 127.0.0.1 opens UDP sockets only on loopback and tells only its bind address", async () => {
  const endpoint = await bindLoopbackEndpoint();
  try {
    const sockets = endpoint.boundSockets().map((text) => parseSocketAddress(text));
    assert.equal(sockets.length, 2, `one socket per IP family: ${endpoint.boundSockets()}`);
    for (const socket of sockets) {
      assert.ok(socket?.host === "127.0.0.1" || socket?.host === "::1", `${socket?.host}`);
    }
    const own = sockets.find((socket) => socket?.family === 4)!;
    assert.deepEqual(endpoint.addresses(), [`127.0.0.1:${own.port}`]);
  } finally {
    await endpoint.close();
  }
});

Deno.test("P2pEndpoint answers a later connection that Iroh sends to its other IP family's loopback socket", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    server.handle(TEST_ALPN, () => {});
    const first = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    // Over the first connection Iroh learns the server's [::1] socket, and it may send the
    // next connection there: it must be answered, not dropped as outside the bind address.
    const companion = server.boundSockets().find((text) => text.startsWith("[::1]:"));
    assert.ok(companion !== undefined, `an IPv6 loopback socket: ${server.boundSockets()}`);
    const second = await client.connect(
      { ...peerAddressOf(server), addresses: [companion] },
      TEST_ALPN,
      { timeoutMs: 5000 },
    );
    assert.equal(second.remoteNodeId, server.nodeId);
    first.close("done");
    second.close("done");
    assert.equal(server.counters().incomingOutsideBind, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pEndpoint accepts a connection on its bind address (and counts no drop)", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    server.handle(TEST_ALPN, () => {});
    const connection = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    assert.equal(connection.remoteNodeId, server.nodeId);
    connection.close("done");
    assert.equal(server.counters().incomingOutsideBind, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pEndpoint tells peers its advertise addresses instead of the bound one", async () => {
  const endpoint = await bindAt("127.0.0.1:0", ["203.0.113.9:7001", "[2001:db8::9]:7001"]);
  try {
    assert.deepEqual(endpoint.addresses(), ["203.0.113.9:7001", "[2001:db8::9]:7001"]);
  } finally {
    await endpoint.close();
  }
});

Deno.test("P2pEndpoint.bind() refuses an advertise address that names no dialable host", async () => {
  await assert.rejects(
    bindAt("127.0.0.1:0", ["0.0.0.0:7001"]),
    (error) =>
      error instanceof TransportError && error.code === "bind_failed" &&
      /advertised address "0\.0\.0\.0:7001"/.test(error.message),
  );
});
