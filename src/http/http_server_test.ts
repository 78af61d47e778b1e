import assert from "node:assert/strict";
import { StartupError } from "../util/errors.ts";
import { type HttpRoutes, type HttpServer, startHttpServer } from "./http_server.ts";
import { NodeMetrics } from "./metrics.ts";
import { SourceRateLimiter } from "../util/source_rate_limiter.ts";

const BOOTSTRAP_INFO = {
  node_id: 1,
  p2p_node_id: "a".repeat(64),
  p2p_addresses: ["127.0.0.1:7001"],
  p2p_relay_url: null,
  cluster_id: null,
  leader_id: null,
};

interface Fixture {
  server: HttpServer;
  metrics: NodeMetrics;
  state: { serving: boolean };
  url(path: string): string;
}

async function withServer(
  options: { routes?: Partial<HttpRoutes>; bootstrapLimiter?: SourceRateLimiter },
  body: (fixture: Fixture) => Promise<void>,
): Promise<void> {
  const state = { serving: true };
  const metrics = new NodeMetrics({ defaultMetrics: false });
  const routes: HttpRoutes = {
    bootstrap: () => BOOTSTRAP_INFO,
    status: () => Promise.resolve({ node_id: 1, role: "leader" }),
    isServing: () => state.serving,
    ...options.routes,
  };
  const server = await startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    routes,
    metrics,
    ...(options.bootstrapLimiter === undefined
      ? {}
      : { bootstrapLimiter: options.bootstrapLimiter }),
  });
  try {
    await body({ server, metrics, state, url: (path) => `http://127.0.0.1:${server.port}${path}` });
  } finally {
    await server.shutdown();
  }
}

/** Fetches `url` and reads the whole body, so that no response stream is left open. */
async function request(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, body: await response.text() };
}

Deno.test("GET /health answers 200 ok while serving and 503 stopping after", async () => {
  await withServer({}, async ({ state, url }) => {
    const serving = await request(url("/health"));
    assert.equal(serving.status, 200);
    assert.deepEqual(JSON.parse(serving.body), { status: "ok" });
    state.serving = false;
    const stopping = await request(url("/health"));
    assert.equal(stopping.status, 503);
    assert.deepEqual(JSON.parse(stopping.body), { status: "stopping" });
  });
});

Deno.test("GET /bootstrap and /status serialise the objects the node supplies", async () => {
  await withServer({}, async ({ url }) => {
    const bootstrap = await request(url("/bootstrap"));
    assert.equal(bootstrap.status, 200);
    assert.equal(bootstrap.headers.get("content-type"), "application/json");
    assert.deepEqual(JSON.parse(bootstrap.body), BOOTSTRAP_INFO);
    const status = await request(url("/status?verbose=1"));
    assert.equal(status.status, 200);
    assert.deepEqual(JSON.parse(status.body), { node_id: 1, role: "leader" });
  });
});

Deno.test("GET /metrics answers Prometheus text that counts the requests served", async () => {
  await withServer({}, async ({ url }) => {
    await request(url("/health"));
    await request(url("/health"));
    await request(url("/nowhere"));
    const metrics = await request(url("/metrics"));
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(metrics.body, /^blixard_http_requests_total\{route="\/health",status="200"\} 2$/m);
    assert.match(metrics.body, /^blixard_http_requests_total\{route="other",status="404"\} 1$/m);
  });
});

Deno.test("an unknown path answers 404 JSON and is counted under route other", async () => {
  await withServer({}, async ({ url, metrics }) => {
    const response = await request(url("/admin/" + "x".repeat(1000)));
    assert.equal(response.status, 404);
    assert.equal(response.headers.get("content-type"), "application/json");
    const { error } = JSON.parse(response.body);
    assert.match(error, /^no route for \/admin\/x+…$/);
    assert.ok(error.length < 300, "the echoed path is bounded");
    const { body } = await metrics.render();
    assert.match(body, /^blixard_http_requests_total\{route="other",status="404"\} 1$/m);
  });
});

Deno.test("a known path with another method answers 405 with an Allow header", async () => {
  await withServer({}, async ({ url, metrics }) => {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const response = await request(url("/bootstrap"), { method });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "GET, HEAD");
      assert.match(JSON.parse(response.body).error, new RegExp(`^${method} is not allowed`));
    }
    const { body } = await metrics.render();
    assert.match(body, /^blixard_http_requests_total\{route="\/bootstrap",status="405"\} 3$/m);
  });
});

Deno.test("HEAD is answered wherever GET is, without a body", async () => {
  await withServer({}, async ({ url }) => {
    for (const path of ["/bootstrap", "/health", "/status", "/metrics"]) {
      const response = await request(url(path), { method: "HEAD" });
      assert.equal(response.status, 200, path);
      assert.equal(response.body, "", path);
    }
  });
});

Deno.test("/bootstrap answers 429 with Retry-After once its source's token bucket is empty", async () => {
  const clock = { nowMs: 0 };
  const bootstrapLimiter = new SourceRateLimiter({
    perSource: { burst: 2, perSecond: 0.5 },
    sourcesMax: 4,
    now: () => clock.nowMs,
  });
  await withServer({ bootstrapLimiter }, async ({ url, metrics }) => {
    assert.equal((await request(url("/bootstrap"))).status, 200);
    assert.equal((await request(url("/bootstrap"))).status, 200);
    const limited = await request(url("/bootstrap"));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "2");
    assert.match(JSON.parse(limited.body).error, /too many/);
    assert.equal((await request(url("/health"))).status, 200, "other routes are not limited");
    clock.nowMs += 2000;
    assert.equal((await request(url("/bootstrap"))).status, 200);
    const { body } = await metrics.render();
    assert.match(body, /^blixard_http_requests_total\{route="\/bootstrap",status="429"\} 1$/m);
  });
});

Deno.test("a route that throws answers 500 JSON and the server keeps serving", async () => {
  const routes = {
    status: () => {
      throw new Error("snapshot unavailable");
    },
  };
  await withServer({ routes }, async ({ url }) => {
    const failed = await request(url("/status"));
    assert.equal(failed.status, 500);
    assert.deepEqual(JSON.parse(failed.body), { error: "internal error; see the node's log" });
    assert.equal((await request(url("/health"))).status, 200);
  });
});

Deno.test("startHttpServer() on a port in use throws a StartupError naming the address", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    await assert.rejects(
      startHttpServer({
        hostname: "127.0.0.1",
        port,
        routes: { bootstrap: () => ({}), status: () => ({}), isServing: () => true },
        metrics: new NodeMetrics({ defaultMetrics: false }),
      }),
      (error: unknown) => {
        assert.ok(error instanceof StartupError);
        assert.equal(
          error.message,
          `HTTP port 127.0.0.1:${port} is in use (bind port + 1000): ` +
            "choose another --bind port or stop the process using it",
        );
        return true;
      },
    );
  } finally {
    listener.close();
  }
});

Deno.test("startHttpServer() on an address of another machine names it in a StartupError", async () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never local. Binding sends no traffic.
  await assert.rejects(
    startHttpServer({
      hostname: "192.0.2.1",
      port: 8001,
      routes: { bootstrap: () => ({}), status: () => ({}), isServing: () => true },
      metrics: new NodeMetrics({ defaultMetrics: false }),
    }),
    (error: unknown) => {
      assert.ok(error instanceof StartupError);
      assert.equal(
        error.message,
        "HTTP address 192.0.2.1:8001 is not an address of this machine: choose a --bind host it has",
      );
      return true;
    },
  );
});

Deno.test("HttpServer.shutdown() frees the port and may be called twice", async () => {
  let port = 0;
  await withServer({}, async ({ server }) => {
    port = server.port;
    assert.equal((await request(`http://127.0.0.1:${port}/health`)).status, 200);
    await server.shutdown();
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
});

Deno.test("startHttpServer() prints no Deno.serve banner on stdout or stderr", async () => {
  const code = `
    import { startHttpServer } from ${
    JSON.stringify(new URL("./http_server.ts", import.meta.url).href)
  };
    import { NodeMetrics } from ${JSON.stringify(new URL("./metrics.ts", import.meta.url).href)};
    const server = await startHttpServer({
      hostname: "127.0.0.1", port: 0,
      routes: { bootstrap: () => ({}), status: () => ({}), isServing: () => true },
      metrics: new NodeMetrics({ defaultMetrics: false }),
    });
    await server.shutdown();
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: new URL("../../", import.meta.url),
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  assert.equal(new TextDecoder().decode(output.stdout), "");
  assert.doesNotMatch(stderr, /Listening/);
});

Deno.test("/bootstrap limits each source address on its own", async () => {
  const bootstrapLimiter = new SourceRateLimiter({
    perSource: { burst: 1, perSecond: 0.001 },
    sourcesMax: 4,
  });
  const stranger = Deno.createHttpClient({ localAddress: "127.0.0.2" });
  try {
    await withServer({ bootstrapLimiter }, async ({ url }) => {
      const fromStranger = async () => {
        const response = await fetch(url("/bootstrap"), { client: stranger });
        await response.body?.cancel();
        return response.status;
      };
      assert.equal(await fromStranger(), 200);
      assert.equal(await fromStranger(), 429);
      assert.equal((await request(url("/bootstrap"))).status, 200, "127.0.0.1 has its own bucket");
    });
  } finally {
    stranger.close();
  }
});

Deno.test("GET /backup passes a chunk number from 'from' (1 without it), and answers 404 to one that is not digits before asking", async () => {
  const asked: [string, number][] = [];
  const backup = (id: string, from: number) => {
    asked.push([id, from]);
    return new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  };
  await withServer({ routes: { backup } }, async ({ url }) => {
    assert.equal((await request(url("/backup?id=a"))).status, 200);
    assert.equal((await request(url("/backup?id=b&from=42"))).status, 200);
    for (const from of ["0", "-1", "1e3", "x", "0012", "9999999999", ""]) {
      const refused = await request(url(`/backup?id=c&from=${from}`));
      assert.equal(refused.status, 404, `from=${from}`);
    }
  });
  assert.deepEqual(asked, [["a", 1], ["b", 42]]);
});

Deno.test("GET /health answers 503 disk_full while the disk is full, 200 with ?exclude=disk_full, and 200 ok once it has room", async () => {
  let since: string | null = "2026-12-06T10:00:00.000Z";
  await withServer({ routes: { diskFullSince: () => since } }, async ({ url }) => {
    const full = await request(url("/health"));
    assert.equal(full.status, 503);
    const body = JSON.parse(full.body);
    assert.equal(body.status, "disk_full");
    assert.equal(body.disk_full.since, since);
    assert.match(body.disk_full.reason, /full: it refuses requests until space is freed/);
    for (const query of ["?exclude=disk_full", "?exclude=other,disk_full"]) {
      const excluded = await request(url(`/health${query}`));
      assert.equal(excluded.status, 200, query);
      assert.deepEqual(JSON.parse(excluded.body), { status: "ok", disk_full: body.disk_full });
    }
    assert.equal((await request(url("/health?exclude=other"))).status, 503);
    since = null;
    const roomy = await request(url("/health"));
    assert.equal(roomy.status, 200);
    assert.deepEqual(JSON.parse(roomy.body), { status: "ok" });
  });
});
