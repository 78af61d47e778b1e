import assert from "node:assert/strict";
import { ClusterSecret } from "../auth/cluster_secret.ts";
import { signBootstrapInfo } from "./bootstrap_signature.ts";
import { SecretKey } from "../transport/iroh.ts";
import type { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { PING_RPC, pingHandler } from "../transport/ping_rpc.ts";
import { RpcServer } from "../transport/rpc.ts";
import { bindLoopbackEndpoint } from "../transport/testing.ts";
import {
  type BootstrapEvent,
  fetchBootstrapInfo,
  findSeed,
  type FindSeedOptions,
  type SeedCache,
} from "./bootstrap_client.ts";
import {
  BootstrapError,
  type BootstrapFailureReason,
  SeedNotFoundError,
} from "./bootstrap_error.ts";
import { type BootstrapInfo, bootstrapInfoFor } from "./bootstrap_info.ts";

type Handler = (request: Request) => Response | Promise<Response>;

/** Serves `handler` on 127.0.0.1 with a port from the OS, and shuts it down after `body`. */
async function withHttp(handler: Handler, body: (url: string) => Promise<void>): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  try {
    await body(`http://127.0.0.1:${server.addr.port}/bootstrap`);
  } finally {
    await server.shutdown();
  }
}

/** A `/bootstrap` URL on a TCP port where nothing listens. */
function closedPortUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return `http://127.0.0.1:${listener.addr.port}/bootstrap`;
}

/** A node with node id 1 serving ping over Iroh, as a seed does. */
async function withSeedEndpoint(body: (endpoint: P2pEndpoint) => Promise<void>): Promise<void> {
  const endpoint = await bindLoopbackEndpoint();
  try {
    const rpc = new RpcServer();
    rpc.register(PING_RPC, pingHandler({ nodeId: 1, p2pNodeId: endpoint.nodeId }));
    rpc.serve(endpoint);
    await body(endpoint);
  } finally {
    await endpoint.close();
  }
}

/** A joiner's endpoint, closed after `body`. */
async function withJoiner(body: (endpoint: P2pEndpoint) => Promise<void>): Promise<void> {
  const endpoint = await bindLoopbackEndpoint();
  try {
    await body(endpoint);
  } finally {
    await endpoint.close();
  }
}

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Options for exactly one round: the first pause (≥ 2.5 s) would pass the 2 s join timeout. */
function oneRound(endpoint: P2pEndpoint, events: BootstrapEvent[]): FindSeedOptions {
  return {
    endpoint,
    joinTimeoutMs: 2000,
    backoffInitialMs: 5000,
    onEvent: (event) => events.push(event),
  };
}

const INFO = {
  node_id: 1,
  p2p_node_id: SecretKey.generate().public().toString(),
  p2p_addresses: ["127.0.0.1:7001"],
  p2p_relay_url: null,
};

Deno.test("fetchBootstrapInfo() returns the validated answer", async () => {
  await withHttp(() => json(INFO), async (url) => {
    const info = await fetchBootstrapInfo({ peer: "seed", url }, { timeoutMs: 5000 });
    assert.deepStrictEqual(info, INFO);
  });
});

Deno.test("fetchBootstrapInfo() classifies each bad answer and names the field", async () => {
  const cases: [Handler, BootstrapFailureReason, string | null, RegExp][] = [
    [() => new Response("<html>"), "not_json", null, /\/bootstrap body: not JSON/],
    [() => json({ ...INFO, node_id: "one" }), "invalid_field", "node_id", /field node_id/],
    [() => json({ ...INFO, p2p_node_id: "z" }), "invalid_field", "p2p_node_id", /not a valid Iroh/],
    [
      () => json({ ...INFO, p2p_addresses: ["1.2.3:4"] }),
      "invalid_field",
      "p2p_addresses[0]",
      /"1\.2\.3:4" is not a dialable/,
    ],
    [() => json({ error: "down" }, 503), "http_status", null, /HTTP status 503/],
    [() => json({ error: "slow down" }, 429), "rate_limited", null, /HTTP status 429/],
    [() => new Response("x".repeat(100_000)), "body_too_large", null, /100000 bytes declared/],
    [() => new Response(new Uint8Array([0x7b, 0xff, 0x7d])), "not_json", null, /not UTF-8/],
  ];
  for (const [handler, reason, field, message] of cases) {
    await withHttp(handler, async (url) => {
      await assert.rejects(
        fetchBootstrapInfo({ peer: "seed", url }, { timeoutMs: 5000 }),
        (error) =>
          error instanceof BootstrapError && error.reason === reason && error.field === field &&
          error.message.startsWith("peer seed: ") && message.test(error.message),
        reason,
      );
    });
  }
});

Deno.test("fetchBootstrapInfo() stops reading an endless chunked body at 64 KiB", async () => {
  // The body never ends: the fetch can only finish by refusing it part-way.
  const endless = () =>
    new Response(
      new ReadableStream({ pull: (controller) => controller.enqueue(new Uint8Array(4096)) }),
    );
  await withHttp(endless, async (url) => {
    await assert.rejects(
      fetchBootstrapInfo({ peer: "seed", url }, { timeoutMs: 10_000 }),
      (error) =>
        error instanceof BootstrapError && error.reason === "body_too_large" &&
        /exceeds 65536 bytes/.test(error.message),
    );
  });
});

Deno.test("fetchBootstrapInfo() reports a closed port as unreachable and a silent peer as timeout", async () => {
  await assert.rejects(
    fetchBootstrapInfo({ peer: "dead", url: closedPortUrl() }, { timeoutMs: 5000 }),
    (error) =>
      error instanceof BootstrapError && error.reason === "unreachable" &&
      /^peer dead: \/bootstrap: Connection refused/.test(error.message),
  );
  const release = Promise.withResolvers<void>();
  await withHttp(async () => {
    await release.promise;
    return json(INFO);
  }, async (url) => {
    try {
      await assert.rejects(
        fetchBootstrapInfo({ peer: "silent", url }, { timeoutMs: 100 }),
        (error) =>
          error instanceof BootstrapError && error.reason === "timeout" &&
          /no answer within 100 ms/.test(error.message),
      );
    } finally {
      release.resolve();
    }
  });
});

Deno.test("findSeed() passes over a dead peer and returns the live one, connected and pinged", async () => {
  await withSeedEndpoint(async (seedEndpoint) => {
    await withHttp(() => json(bootstrapInfoFor(seedEndpoint, { nodeId: 1 })), async (url) => {
      await withJoiner(async (joiner) => {
        const events: BootstrapEvent[] = [];
        const seed = await findSeed([closedPortUrl(), url], oneRound(joiner, events));
        try {
          assert.equal(seed.peer, url);
          assert.equal(seed.info.p2p_node_id, seedEndpoint.nodeId);
          assert.equal(seed.connection.remoteNodeId, seedEndpoint.nodeId);
          assert.equal(seed.connection.isClosed, false);
          assert.deepStrictEqual(
            events.filter((event) => event.outcome === "ok").map((event) => event.peer),
            [
              url,
            ],
          );
        } finally {
          seed.connection.close("test over");
        }
      });
    });
  });
});

Deno.test("findSeed() reports the field of each bad /bootstrap answer and gives up at the join timeout", async () => {
  const cases: [unknown, string | null, RegExp][] = [
    ["not json", null, /\/bootstrap body: not JSON/],
    [{ ...INFO, node_id: true }, "node_id", /field node_id: must be an integer/],
    [{ ...INFO, p2p_node_id: "0123" }, "p2p_node_id", /field p2p_node_id: not a valid Iroh/],
    [{ ...INFO, p2p_addresses: ["seed:7001"] }, "p2p_addresses[0]", /field p2p_addresses\[0\]/],
    ["x".repeat(70_000), null, /the limit is 65536 bytes/],
  ];
  await withJoiner(async (joiner) => {
    for (const [body, field, message] of cases) {
      const handler = () => typeof body === "string" ? new Response(body) : json(body);
      await withHttp(handler, async (url) => {
        const events: BootstrapEvent[] = [];
        await assert.rejects(findSeed([url], oneRound(joiner, events)), (error) => {
          assert.ok(error instanceof SeedNotFoundError);
          assert.equal(error.failures.length, 1);
          assert.equal(error.failures[0]?.field, field);
          assert.match(error.failures[0]?.message ?? "", message);
          assert.match(
            error.message,
            /no seed found within the join timeout of 2000 ms \(1 round\)/,
          );
          return true;
        });
        assert.deepStrictEqual(events.map((event) => [event.outcome, event.field]), [[
          "invalid",
          field,
        ]]);
      });
    }
  });
});

Deno.test("findSeed() follows a dns: entry to the seeds its TXT records name", async () => {
  await withSeedEndpoint(async (seedEndpoint) => {
    await withHttp(() => json(bootstrapInfoFor(seedEndpoint, { nodeId: 1 })), async (url) => {
      await withJoiner(async (joiner) => {
        const lookups: string[] = [];
        const seed = await findSeed(["dns:seeds.test"], {
          ...oneRound(joiner, []),
          resolveTxt: (name) => {
            lookups.push(name);
            return Promise.resolve([[url]]);
          },
        });
        seed.connection.close("test over");
        assert.deepStrictEqual(lookups, ["seeds.test"]);
        assert.equal(seed.peer, `${url} (dns:seeds.test)`);
        assert.equal(seed.info.p2p_node_id, seedEndpoint.nodeId);
      });
    });
  });
});

Deno.test("findSeed() refuses a peer whose Iroh key differs from the one /bootstrap advertised", async () => {
  await withSeedEndpoint(async (seedEndpoint) => {
    const impostor = SecretKey.generate().public().toString();
    const advertised = { ...bootstrapInfoFor(seedEndpoint, { nodeId: 1 }), p2p_node_id: impostor };
    await withHttp(() => json(advertised), async (url) => {
      await withJoiner(async (joiner) => {
        const events: BootstrapEvent[] = [];
        await assert.rejects(findSeed([url], oneRound(joiner, events)), (error) => {
          assert.ok(error instanceof SeedNotFoundError);
          assert.equal(error.failures[0]?.reason, "wrong_identity");
          assert.match(error.failures[0]?.message ?? "", new RegExp(`to ${impostor}`));
          return true;
        });
        assert.deepStrictEqual(events.map((event) => event.outcome), ["wrong_identity"]);
      });
    });
  });
});

Deno.test("findSeed() refuses a seed whose ping names another node id than /bootstrap did", async () => {
  await withSeedEndpoint(async (seedEndpoint) => {
    await withHttp(() => json(bootstrapInfoFor(seedEndpoint, { nodeId: 2 })), async (url) => {
      await withJoiner(async (joiner) => {
        await assert.rejects(findSeed([url], oneRound(joiner, [])), (error) => {
          assert.ok(error instanceof SeedNotFoundError);
          assert.equal(error.failures[0]?.reason, "wrong_identity");
          assert.equal(error.failures[0]?.field, "node_id");
          return true;
        });
      });
    });
  });
});

Deno.test("findSeed() retries after a failed round and finds the seed once it answers", async () => {
  await withSeedEndpoint(async (seedEndpoint) => {
    let requests = 0;
    const handler = () =>
      ++requests === 1
        ? json({ error: "starting" }, 503)
        : json(bootstrapInfoFor(seedEndpoint, { nodeId: 1 }));
    await withHttp(handler, async (url) => {
      await withJoiner(async (joiner) => {
        const events: BootstrapEvent[] = [];
        const seed = await findSeed([url], {
          endpoint: joiner,
          joinTimeoutMs: 10_000,
          backoffInitialMs: 20,
          random: () => 0,
          onEvent: (event) => events.push(event),
        });
        seed.connection.close("test over");
        assert.deepStrictEqual(events.map((event) => event.outcome), ["http_error", "ok"]);
        assert.equal(requests, 2);
      });
    });
  });
});

Deno.test("findSeed() lists the last failure of every peer, in --peers order", async () => {
  await withJoiner(async (joiner) => {
    await withHttp(() => json({ error: "down" }, 500), async (url) => {
      const dead = closedPortUrl();
      await assert.rejects(findSeed([url, dead], oneRound(joiner, [])), (error) => {
        assert.ok(error instanceof SeedNotFoundError);
        assert.deepStrictEqual(error.failures.map((failure) => [failure.peer, failure.reason]), [
          [url, "http_status"],
          [dead, "unreachable"],
        ]);
        assert.ok(error.message.includes(`peer ${url}: /bootstrap: HTTP status 500`));
        assert.ok(error.message.includes(`peer ${dead}: /bootstrap: Connection refused`));
        return true;
      });
    });
  });
});

Deno.test("findSeed() refuses a malformed --peers entry before trying any peer", async () => {
  await withJoiner(async (joiner) => {
    await assert.rejects(
      findSeed(["127.0.0.1:7001", "nonsense"], oneRound(joiner, [])),
      (error) =>
        error instanceof BootstrapError && error.reason === "invalid_peer_entry" &&
        error.peer === "nonsense",
    );
  });
});

Deno.test("findSeed() stops when its signal aborts", async () => {
  await withJoiner(async (joiner) => {
    const controller = new AbortController();
    const searching = findSeed([closedPortUrl()], {
      endpoint: joiner,
      joinTimeoutMs: 60_000,
      backoffInitialMs: 60_000,
      onEvent: () => controller.abort(new Error("node shutting down")),
      signal: controller.signal,
    });
    await assert.rejects(searching, { message: "node shutting down" });
  });
});

Deno.test("findSeed() names a peer's earlier failure, not the timeout of a last round the join timeout cut short", async () => {
  let requests = 0;
  // The first answer is an error; later requests are answered only after the join gave up,
  // so the last round can only time out, with whatever was left of the join timeout.
  const gaveUp = Promise.withResolvers<void>();
  const handler = () =>
    ++requests === 1
      ? json({ error: "starting" }, 503)
      : gaveUp.promise.then(() => json({ error: "late" }, 503));
  await withHttp(handler, async (url) => {
    try {
      await withJoiner(async (joiner) => {
        await assert.rejects(
          findSeed([url], {
            endpoint: joiner,
            joinTimeoutMs: 3_000,
            backoffInitialMs: 100,
            backoffMaxMs: 100,
          }),
          (error) => {
            assert.ok(error instanceof SeedNotFoundError);
            assert.deepStrictEqual(error.failures.map((failure) => failure.reason), [
              "http_status",
            ]);
            assert.match(error.message, /HTTP status 503/);
            return true;
          },
        );
      });
    } finally {
      gaveUp.resolve();
    }
  });
  // Rounds go on until the deadline, so a later round ran, unless the machine was so slow
  // that the first took the whole join timeout.
  assert.ok(requests >= 1);
});

/** A `SeedCache` in memory that records what `findSeed` did with it. */
function memoryCache(entries: Record<string, BootstrapInfo>) {
  const map = new Map(Object.entries(entries));
  const forgotten: string[] = [];
  const cache: SeedCache = {
    lookup: (entry) => map.get(entry) ?? null,
    remember: (entry, info) => void map.set(entry, info),
    forget: (entry) => {
      forgotten.push(entry);
      map.delete(entry);
    },
  };
  return { cache, map, forgotten };
}

Deno.test("findSeed() dials a cached identity without fetching /bootstrap", async () => {
  await withSeedEndpoint(async (seedEndpoint) => {
    let requests = 0;
    const info = bootstrapInfoFor(seedEndpoint, { nodeId: 1 });
    await withHttp(() => (requests++, json(info)), async (url) => {
      await withJoiner(async (joiner) => {
        const { cache, forgotten } = memoryCache({ [url]: info });
        const seed = await findSeed([url], { ...oneRound(joiner, []), seedCache: cache });
        seed.connection.close("test over");
        assert.equal(seed.info.p2p_node_id, seedEndpoint.nodeId);
        assert.equal(requests, 0);
        assert.deepStrictEqual(forgotten, []);
      });
    });
  });
});

Deno.test("findSeed() fetches /bootstrap again, once, when the cached key no longer answers, and keeps the new one", async () => {
  await withSeedEndpoint(async (seedEndpoint) => {
    let requests = 0;
    const info = bootstrapInfoFor(seedEndpoint, { nodeId: 1 });
    await withHttp(() => (requests++, json(info)), async (url) => {
      await withJoiner(async (joiner) => {
        const stale = { ...info, p2p_node_id: SecretKey.generate().public().toString() };
        const { cache, map, forgotten } = memoryCache({ [url]: stale });
        const seed = await findSeed([url], { ...oneRound(joiner, []), seedCache: cache });
        seed.connection.close("test over");
        assert.equal(seed.info.p2p_node_id, seedEndpoint.nodeId);
        assert.equal(requests, 1);
        assert.deepStrictEqual(forgotten, [url]);
        assert.equal(map.get(url)?.p2p_node_id, seedEndpoint.nodeId);
      });
    });
  });
});

Deno.test("findSeed() with a cluster secret uses only cached identities whose signature verifies", async () => {
  const secret = await ClusterSecret.fromBytes(
    new TextEncoder().encode("cache test secret 0123456789"),
  );
  await withSeedEndpoint(async (seedEndpoint) => {
    let requests = 0;
    const signed = await signBootstrapInfo(bootstrapInfoFor(seedEndpoint, { nodeId: 1 }), secret);
    await withHttp(() => (requests++, json(signed)), async (url) => {
      await withJoiner(async (joiner) => {
        const options = { ...oneRound(joiner, []), clusterSecret: secret };
        // Cached by a run without the secret: unsigned, so fetched and verified instead.
        const unsigned = memoryCache({ [url]: bootstrapInfoFor(seedEndpoint, { nodeId: 1 }) });
        (await findSeed([url], { ...options, seedCache: unsigned.cache })).connection.close("x");
        assert.equal(requests, 1);
        assert.equal(unsigned.map.get(url)?.signature, signed.signature);
        // A signed entry is used as it is.
        (await findSeed([url], { ...options, seedCache: unsigned.cache })).connection.close("x");
        assert.equal(requests, 1);
      });
    });
  });
});
