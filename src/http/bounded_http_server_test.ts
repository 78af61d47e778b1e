import assert from "node:assert/strict";
import { BoundedHttpServer, type HttpLimits } from "./bounded_http_server.ts";

async function withServer(
  limits: Partial<HttpLimits>,
  body: (server: BoundedHttpServer) => Promise<void>,
): Promise<void> {
  const server = BoundedHttpServer.listen({
    hostname: "127.0.0.1",
    port: 0,
    handler: (request) =>
      Promise.resolve(Response.json({ path: request.path, from: request.remoteAddress })),
    onError: () => new Response("failed", { status: 500 }),
    limits,
  });
  try {
    await body(server);
  } finally {
    await server.shutdown();
  }
}

/** Opens a TCP connection from 127.0.0.1, sends `text`, and reads until the server closes. */
async function rawExchange(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(text));
    let answer = "";
    const buffer = new Uint8Array(4096);
    for (;;) {
      const read = await conn.read(buffer);
      if (read === null) return answer;
      answer += new TextDecoder().decode(buffer.subarray(0, read));
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the server
    }
  }
}

Deno.test("BoundedHttpServer answers a GET with the handler's response and closes", async () => {
  await withServer({}, async (server) => {
    const response = await fetch(`http://127.0.0.1:${server.port}/x?y=1`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { path: "/x", from: "127.0.0.1" });
  });
});

Deno.test("BoundedHttpServer closes a connection whose head does not arrive within the header timeout", async () => {
  await withServer({ headerTimeoutMs: 200 }, async (server) => {
    const answer = await rawExchange(server.port, "GET /health HTTP/1.1\r\nhost: x\r\n");
    assert.equal(answer, "", "closed without an answer");
    const deadline = performance.now() + 10_000;
    while (server.openConnections > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(server.openConnections, 0);
  });
});

Deno.test("BoundedHttpServer closes a connection whose body does not arrive within the body timeout", async () => {
  await withServer({ bodyTimeoutMs: 200 }, async (server) => {
    const answer = await rawExchange(
      server.port,
      "GET /health HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc",
    );
    assert.equal(answer, "");
  });
});

Deno.test("BoundedHttpServer refuses oversized heads (431) and bodies (413), and chunked bodies (501)", async () => {
  await withServer({ headBytesMax: 256, bodyBytesMax: 8 }, async (server) => {
    const longHead = await rawExchange(
      server.port,
      `GET / HTTP/1.1\r\nx: ${"a".repeat(400)}\r\n\r\n`,
    );
    assert.match(longHead, /^HTTP\/1\.1 431 /);
    const longBody = await rawExchange(server.port, "GET / HTTP/1.1\r\ncontent-length: 9\r\n\r\n");
    assert.match(longBody, /^HTTP\/1\.1 413 /);
    const chunked = await rawExchange(
      server.port,
      "GET / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    assert.match(chunked, /^HTTP\/1\.1 501 /);
    const garbage = await rawExchange(server.port, "hello there\r\n\r\n");
    assert.match(garbage, /^HTTP\/1\.1 400 /);
  });
});

Deno.test("BoundedHttpServer caps connections per source, and other sources still get in", async () => {
  await withServer({ connectionsPerSourceMax: 2, headerTimeoutMs: 20_000 }, async (server) => {
    const held: Deno.TcpConn[] = [];
    try {
      for (let index = 0; index < 2; index++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
        held.push(conn);
      }
      while (server.openConnections < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(await rawExchange(server.port, "GET / HTTP/1.1\r\n\r\n"), "", "refused unread");
      assert.equal(server.refusedConnections, 1);
      const stranger = Deno.createHttpClient({ localAddress: "127.0.0.2" });
      try {
        const response = await fetch(`http://127.0.0.1:${server.port}/`, { client: stranger });
        assert.deepEqual(await response.json(), { path: "/", from: "127.0.0.2" });
      } finally {
        stranger.close();
      }
    } finally {
      for (const conn of held) conn.close();
    }
  });
});

Deno.test("BoundedHttpServer keeps answering after clients that connect and go away at once", async () => {
  await withServer({}, async (server) => {
    for (let index = 0; index < 50; index++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      conn.close();
    }
    const response = await fetch(`http://127.0.0.1:${server.port}/after`);
    assert.deepEqual(await response.json(), { path: "/after", from: "127.0.0.1" });
  });
});
