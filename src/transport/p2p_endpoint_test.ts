import assert from "node:assert/strict";
import { StreamErrorCode } from "./framed_stream.ts";
import { P2pEndpoint, type P2pEvent } from "./p2p_endpoint.ts";
import type { P2pConnection } from "./p2p_connection.ts";
import { SecretKey } from "./iroh.ts";
import {
  bindLoopbackEndpoint,
  deadPeerAddress,
  echo,
  nextEvent,
  peerAddressOf,
} from "./testing.ts";
import { TransportError } from "./transport_error.ts";

const TEST_ALPN = "blixard/test/1";

function isTransportError(code: string): (error: unknown) => boolean {
  return (error) => error instanceof TransportError && error.code === code;
}

Deno.test("P2pEndpoint: two endpoints connect, authenticate each other and exchange frames", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    const accepted = Promise.withResolvers<P2pConnection>();
    server.handle(TEST_ALPN, (connection) => {
      accepted.resolve(connection);
      return echo(connection);
    });
    const connection = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    assert.equal(connection.remoteNodeId, server.nodeId);
    assert.equal((await accepted.promise).remoteNodeId, client.nodeId);
    assert.equal((await accepted.promise).alpn, TEST_ALPN);
    const stream = await connection.openStream();
    const values = [{ term: 3, data: new Uint8Array([1, 2, 3]) }, "two", null];
    await stream.sendBatch(values);
    await stream.finish();
    for (const value of values) assert.deepStrictEqual(await stream.receive(), value);
    assert.equal(await stream.receive(), null);
    assert.equal(connection.path(), "direct");
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pEndpoint.addresses() lists the bound address and never an unspecified one", async () => {
  const loopback = await bindLoopbackEndpoint();
  const wildcard = await P2pEndpoint.bind({
    secretKey: crypto.getRandomValues(new Uint8Array(32)),
    bindAddress: "0.0.0.0:0",
    relayUrl: null,
  });
  try {
    const [address, ...others] = loopback.addresses();
    assert.match(address ?? "", /^127\.0\.0\.1:[1-9][0-9]*$/);
    assert.deepStrictEqual(others, []);
    for (const advertised of wildcard.addresses()) {
      assert.doesNotMatch(advertised, /^(0\.0\.0\.0|\[::\]):/);
    }
  } finally {
    await wildcard.close();
    await loopback.close();
  }
});

Deno.test("P2pEndpoint.bind() explains a port in use and a bad address on one line", async () => {
  const first = await bindLoopbackEndpoint();
  try {
    const taken = first.addresses()[0]!;
    const cases: [string, RegExp][] = [
      [taken, new RegExp(`^UDP ${taken.replaceAll(".", "\\.")}: already in use; stop the process`)],
      ["localhost:7001", /^UDP localhost:7001: not an ip:port address; bind to an IP address/],
    ];
    for (const [bindAddress, message] of cases) {
      await assert.rejects(
        P2pEndpoint.bind({ secretKey: new Uint8Array(32), bindAddress, relayUrl: null }),
        (error) =>
          isTransportError("bind_failed")(error) && message.test((error as Error).message) &&
          !(error as Error).message.includes("\n"),
      );
    }
  } finally {
    await first.close();
  }
});

Deno.test("P2pEndpoint.connect() to a live address under another P2P id fails fast as wrong_identity", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    server.handle(TEST_ALPN, echo);
    const impostorId = SecretKey.generate().public().toString();
    const failed = nextEvent(client, (event) => event.type === "connection_failed");
    await assert.rejects(
      client.connect({ ...peerAddressOf(server), p2pNodeId: impostorId }, TEST_ALPN, {
        timeoutMs: 10_000,
      }),
      (error) =>
        isTransportError("wrong_identity")(error) && (error as Error).message.includes(impostorId),
    );
    assert.deepStrictEqual(
      await failed,
      {
        type: "connection_failed",
        direction: "outgoing",
        alpn: TEST_ALPN,
        reason: "wrong_identity",
      } satisfies P2pEvent,
    );
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pEndpoint.connect() gives up at its deadline where nothing answers", async () => {
  const client = await bindLoopbackEndpoint();
  try {
    await assert.rejects(
      client.connect(await deadPeerAddress(), TEST_ALPN, { timeoutMs: 200 }),
      (error) =>
        isTransportError("connect_timeout")(error) &&
        /within 200 ms/.test((error as Error).message),
    );
  } finally {
    // The native connect runs on until the endpoint closes, which then takes ~3 s.
    await client.close();
  }
});

Deno.test("P2pEndpoint.connect() refuses a malformed P2P id or address before dialling", async () => {
  const client = await bindLoopbackEndpoint();
  try {
    const peer = await deadPeerAddress();
    for (const bad of [{ ...peer, p2pNodeId: "abc" }, { ...peer, addresses: ["0.0.0.0:7001"] }]) {
      await assert.rejects(
        client.connect(bad, TEST_ALPN, { timeoutMs: 1000 }),
        isTransportError("invalid_peer"),
      );
    }
  } finally {
    await client.close();
  }
});

Deno.test("P2pEndpoint refuses a protocol nobody handles and counts the failed handshake", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    server.handle(TEST_ALPN, echo);
    const failed = nextEvent(server, (event) => event.type === "connection_failed");
    await assert.rejects(
      client.connect(peerAddressOf(server), "blixard/unknown/1", { timeoutMs: 5000 }),
      isTransportError("connect_failed"),
    );
    assert.equal((await failed).type, "connection_failed");
    assert.equal(server.counters().handshakeFailures, 1);
    assert.equal(server.counters().incomingOpen, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pEndpoint refuses incoming connections above incomingConnectionsMax", async () => {
  const server = await bindLoopbackEndpoint({ incomingConnectionsMax: 1 });
  const client = await bindLoopbackEndpoint();
  try {
    server.handle(TEST_ALPN, echo);
    const first = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    await assert.rejects(
      client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 }),
      isTransportError("connect_failed"),
    );
    assert.equal(server.counters().incomingRefused, 1);
    const released = nextEvent(server, (event) => event.type === "connection_closed");
    first.close("done");
    await released;
    const again = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    assert.equal(again.remoteNodeId, server.nodeId);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pConnection: an oversize frame resets that stream only; the connection stays usable", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  const serverErrorCodes: string[] = [];
  try {
    server.handle(TEST_ALPN, async (connection) => {
      for (;;) {
        const stream = await connection.acceptStream();
        if (stream === null) return;
        try {
          await stream.send(await stream.receive());
          await stream.finish();
        } catch (error) {
          serverErrorCodes.push(error instanceof TransportError ? error.code : String(error));
        }
      }
    }, { frameBytesMax: 64 });
    const connection = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    const oversize = await connection.openStream();
    await oversize.send("x".repeat(100));
    await assert.rejects(
      oversize.receive(),
      (error) =>
        isTransportError("stream_reset")(error) &&
        (error as Error).message.includes(`code ${StreamErrorCode.malformedFrame}`),
    );
    const fine = await connection.openStream();
    await fine.send("small");
    assert.equal(await fine.receive(), "small");
    assert.equal(connection.isClosed, false);
    assert.deepStrictEqual(serverErrorCodes, ["malformed_frame"]);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pConnection.acceptStream() returns null once the peer closes the connection", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    const accepted = Promise.withResolvers<P2pConnection>();
    server.handle(TEST_ALPN, (connection) => accepted.resolve(connection));
    const connection = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    const serverSide = await accepted.promise;
    const closedEvent = nextEvent(server, (event) => event.type === "connection_closed");
    connection.close("test over");
    assert.equal(await serverSide.acceptStream(), null);
    await serverSide.closed;
    assert.equal(serverSide.isClosed, true);
    assert.equal((await closedEvent).type, "connection_closed");
    await assert.rejects(connection.openStream(), isTransportError("connection_closed"));
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("P2pEndpoint closes a connection whose handler throws and keeps serving", async () => {
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  try {
    let calls = 0;
    server.handle(TEST_ALPN, (connection) => {
      calls++;
      if (calls === 1) throw new Error("handler bug");
      return echo(connection);
    });
    const first = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    await first.closed;
    const second = await client.connect(peerAddressOf(server), TEST_ALPN, { timeoutMs: 5000 });
    const stream = await second.openStream();
    await stream.send(42);
    assert.equal(await stream.receive(), 42);
  } finally {
    await client.close();
    await server.close();
  }
});
