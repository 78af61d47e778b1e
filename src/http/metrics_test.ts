import assert from "node:assert/strict";
import { MetricRegistry } from "./metric_registry.ts";
import { VERSION } from "../version.ts";
import {
  ALPN_LABELS_MAX,
  BOOTSTRAP_FETCH_OUTCOMES,
  DEFAULT_METRICS_REMOVED,
  defineCounter,
  NodeMetrics,
} from "./metrics.ts";
import { type Exposition, parseExposition } from "../../tests/helpers/prometheus.ts";

Deno.test("parseExposition() rejects malformed text, so the checks below can fail", () => {
  assert.throws(() => parseExposition("blixard_x 1\n"), /sample without a TYPE/);
  assert.throws(() => parseExposition("# TYPE blixard_x counter\nblixard_x one\n"), /not a sample/);
  assert.throws(
    () => parseExposition("# TYPE blixard_x gauge\nblixard_x 1\nblixard_x 2\n"),
    /duplicate sample/,
  );
  assert.throws(
    () => parseExposition('# TYPE blixard_x gauge\nblixard_x{a="1} 1\n'),
    /not a sample/,
  );
});

async function scrape(metrics: NodeMetrics): Promise<Exposition> {
  const { contentType, body } = await metrics.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  return parseExposition(body);
}

Deno.test("NodeMetrics.render() is valid Prometheus text with every name prefixed blixard_", async () => {
  const metrics = new NodeMetrics();
  const { types, samples } = await scrape(metrics);
  assert.ok(types.size > 10, "the default process metrics are there");
  for (const name of types.keys()) assert.ok(name.startsWith("blixard_"), name);
  for (const name of samples.keys()) assert.ok(name.startsWith("blixard_"), name);
});

Deno.test("NodeMetrics keeps the default metrics that work under Deno and drops the rest", async () => {
  const { types, samples } = await scrape(new NodeMetrics());
  for (
    const name of [
      "blixard_process_cpu_seconds_total",
      "blixard_process_resident_memory_bytes",
      "blixard_process_open_fds",
      "blixard_process_start_time_seconds",
      "blixard_nodejs_eventloop_lag_p99_seconds",
      "blixard_nodejs_heap_size_used_bytes",
    ]
  ) {
    assert.ok(types.has(name), name);
  }
  assert.ok((samples.get("blixard_process_resident_memory_bytes{}") ?? 0) > 0);
  for (const name of DEFAULT_METRICS_REMOVED) assert.ok(!types.has(`blixard_${name}`), name);
});

Deno.test("NodeMetrics without default metrics has only the node's own families", async () => {
  const { types } = await scrape(new NodeMetrics({ defaultMetrics: false }));
  assert.deepEqual([...types.keys()].sort(), [
    "blixard_bootstrap_fetches_total",
    "blixard_build_info",
    "blixard_http_requests_total",
    "blixard_log_lines_suppressed_total",
    "blixard_p2p_connections_open",
    "blixard_p2p_connections_total",
  ]);
});

Deno.test("NodeMetrics exports the Blixard and Deno versions in blixard_build_info", async () => {
  const { samples } = await scrape(new NodeMetrics({ defaultMetrics: false }));
  const key = `blixard_build_info{deno="${Deno.version.deno}",version="${VERSION}"}`;
  assert.equal(samples.get(key), 1);
});

Deno.test("NodeMetrics.recordHttpRequest() moves the counter of that route and status", async () => {
  const metrics = new NodeMetrics({ defaultMetrics: false });
  metrics.recordHttpRequest("/health", 200);
  metrics.recordHttpRequest("/health", 200);
  metrics.recordHttpRequest("other", 404);
  const { samples } = await scrape(metrics);
  assert.equal(samples.get('blixard_http_requests_total{route="/health",status="200"}'), 2);
  assert.equal(samples.get('blixard_http_requests_total{route="other",status="404"}'), 1);
  assert.throws(() => metrics.recordHttpRequest("/health", 42), /not a status code/);
});

Deno.test("NodeMetrics starts every bootstrap outcome at zero and counts fetches", async () => {
  const metrics = new NodeMetrics({ defaultMetrics: false });
  metrics.recordBootstrapFetch("timeout");
  const { samples } = await scrape(metrics);
  for (const outcome of BOOTSTRAP_FETCH_OUTCOMES) {
    const value = samples.get(`blixard_bootstrap_fetches_total{outcome="${outcome}"}`);
    assert.equal(value, outcome === "timeout" ? 1 : 0, outcome);
  }
});

Deno.test("NodeMetrics counts P2P connection attempts and tracks open connections", async () => {
  const metrics = new NodeMetrics({ defaultMetrics: false });
  metrics.recordP2pConnection({ direction: "outgoing", alpn: "blixard/raft/1", outcome: "ok" });
  metrics.recordP2pConnection({
    direction: "incoming",
    alpn: "blixard/raft/1",
    outcome: "refused",
  });
  metrics.p2pConnectionOpened("blixard/raft/1");
  metrics.p2pConnectionOpened("blixard/raft/1");
  metrics.p2pConnectionOpened("blixard/rpc/1");
  metrics.p2pConnectionClosed("blixard/raft/1");
  const { samples } = await scrape(metrics);
  assert.equal(
    samples.get(
      'blixard_p2p_connections_total{alpn="blixard/raft/1",direction="outgoing",outcome="ok"}',
    ),
    1,
  );
  assert.equal(
    samples.get(
      'blixard_p2p_connections_total{alpn="blixard/raft/1",direction="incoming",outcome="refused"}',
    ),
    1,
  );
  assert.equal(samples.get('blixard_p2p_connections_open{alpn="blixard/raft/1"}'), 1);
  assert.equal(samples.get('blixard_p2p_connections_open{alpn="blixard/rpc/1"}'), 1);
});

Deno.test("NodeMetrics refuses to close more P2P connections than were opened", () => {
  const metrics = new NodeMetrics({ defaultMetrics: false });
  metrics.p2pConnectionOpened("blixard/rpc/1");
  metrics.p2pConnectionClosed("blixard/rpc/1");
  assert.throws(() => metrics.p2pConnectionClosed("blixard/rpc/1"), /without a matching open/);
});

Deno.test("NodeMetrics bounds the ALPN label in form and number of values", () => {
  const metrics = new NodeMetrics({ defaultMetrics: false });
  assert.throws(() => metrics.p2pConnectionOpened("has space"), /invalid/);
  assert.throws(() => metrics.p2pConnectionOpened(""), /invalid/);
  for (let index = 0; index < ALPN_LABELS_MAX; index += 1) {
    metrics.p2pConnectionOpened(`test/${index}`);
  }
  assert.throws(() => metrics.p2pConnectionOpened("test/one-too-many"), /more than/);
});

Deno.test("two NodeMetrics in one process keep separate counts", async () => {
  const first = new NodeMetrics({ defaultMetrics: false });
  const second = new NodeMetrics({ defaultMetrics: false });
  first.recordBootstrapFetch("ok");
  const { samples } = await scrape(second);
  assert.equal(samples.get('blixard_bootstrap_fetches_total{outcome="ok"}'), 0);
});

Deno.test("defineCounter() prefixes the name and refuses a prefixed or malformed one", async () => {
  const registry = new MetricRegistry();
  defineCounter(registry, { name: "raft_elections_total", help: "Elections.", labelNames: [] })
    .inc();
  assert.match(await registry.render(), /^blixard_raft_elections_total 1$/m);
  for (const name of ["blixard_x_total", "Raft", "raft-elections", ""]) {
    assert.throws(
      () => defineCounter(registry, { name, help: "x", labelNames: [] }),
      /lowercase snake case/,
    );
  }
});
