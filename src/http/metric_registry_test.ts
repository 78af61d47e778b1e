import assert from "node:assert/strict";
import * as promClient from "prom-client";
import { Counter, Gauge, Histogram, MetricRegistry } from "./metric_registry.ts";

/**
 * The same metrics and the same calls, once through prom-client and once through this
 * module: `/metrics` must read byte for byte as it did when every metric was prom-client's.
 */
function exercise(lib: {
  counter: (config: { name: string; help: string; labelNames: string[] }) => {
    inc(labels?: Record<string, string> | number, value?: number): void;
  };
  gauge: (
    config: { name: string; help: string; labelNames: string[]; collect?: () => void },
  ) => { set(labels: Record<string, string> | number, value?: number): void };
  histogram: (
    config: { name: string; help: string; labelNames: string[]; buckets: number[] },
  ) => { observe(labels: Record<string, string> | number, value?: number): void };
}): void {
  const plain = lib.counter({ name: "blixard_plain_total", help: "A counter.", labelNames: [] });
  plain.inc();
  plain.inc(0);
  plain.inc(2.5);
  lib.counter({ name: "blixard_untouched_total", help: "Never moved.", labelNames: [] });
  lib.counter({ name: "blixard_empty_total", help: "No series yet.", labelNames: ["a"] });
  const labelled = lib.counter({
    name: "blixard_labelled_total",
    help: 'Help with a \\ backslash,\na newline and "quotes".',
    labelNames: ["direction", "alpn", "outcome"],
  });
  labelled.inc({ direction: "outgoing", alpn: "blixard/raft/1", outcome: "ok" }, 0);
  labelled.inc({ outcome: "ok", alpn: "blixard/raft/1", direction: "outgoing" });
  labelled.inc({ direction: "in", alpn: 'quote " back \\ new\nline', outcome: "refused" }, 3);
  const gauge = lib.gauge({ name: "blixard_plain", help: "A gauge.", labelNames: [] });
  gauge.set(-0.25);
  let reads = 0;
  const collected = lib.gauge({
    name: "blixard_collected",
    help: "Set at scrape time.",
    labelNames: [],
    collect: () => collected.set(++reads),
  });
  const roles = lib.gauge({ name: "blixard_role", help: "Roles.", labelNames: ["role"] });
  roles.set({ role: "leader" }, 1);
  roles.set({ role: "follower" }, 0);
  roles.set({ role: "leader" }, 0);
  const info = lib.gauge({ name: "blixard_info", help: "Info.", labelNames: ["version", "deno"] });
  info.set({ version: "1.2.3", deno: "2.9.6" }, 1);
  const special = lib.gauge({ name: "blixard_special", help: "Odd values.", labelNames: ["v"] });
  special.set({ v: "nan" }, Number.NaN);
  special.set({ v: "inf" }, Number.POSITIVE_INFINITY);
  special.set({ v: "-inf" }, Number.NEGATIVE_INFINITY);
  special.set({ v: "big" }, 1e21);
  special.set({ v: "small" }, 1e-7);
  const join = lib.histogram({
    name: "blixard_join_duration_seconds",
    help: "Join phases.",
    labelNames: ["phase"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  join.observe({ phase: "joined" }, 0.1);
  join.observe({ phase: "joined" }, 0.07);
  join.observe({ phase: "learner" }, 42);
  join.observe({ phase: "joined" }, 3);
  lib.histogram({
    name: "blixard_plain_seconds",
    help: "Unlabelled.",
    labelNames: [],
    buckets: [1],
  })
    .observe(0.5);
}

Deno.test("MetricRegistry renders what prom-client renders for the same metrics and calls", async () => {
  const promRegistry = new promClient.Registry();
  exercise({
    counter: (config) => new promClient.Counter({ ...config, registers: [promRegistry] }),
    gauge: (config) => new promClient.Gauge({ ...config, registers: [promRegistry] }),
    histogram: (config) => new promClient.Histogram({ ...config, registers: [promRegistry] }),
  });
  const ours = new MetricRegistry();
  exercise({
    counter: (config) => ours.register(new Counter(config)),
    gauge: (config) => ours.register(new Gauge(config)),
    histogram: (config) => ours.register(new Histogram(config)),
  });
  const expected = await promRegistry.metrics();
  assert.equal(await ours.render(), expected);
  // collect() runs at every scrape, in both.
  assert.equal(await ours.render(), await promRegistry.metrics());
  assert.equal(ours.contentType, promRegistry.contentType);
});

Deno.test("MetricRegistry refuses what prom-client refuses", () => {
  const registry = new MetricRegistry();
  const counter = registry.register(new Counter({ name: "a_total", help: "a", labelNames: ["x"] }));
  assert.throws(() => counter.inc({ y: "1" } as never), /not included in initial labelset/);
  assert.throws(() => counter.inc({ x: "1" }, -1), /not possible to decrease a counter/);
  assert.throws(() => counter.inc({ x: "1" }, Number.POSITIVE_INFINITY), /not a valid number/);
  assert.throws(
    () => registry.register(new Counter({ name: "a_total", help: "b", labelNames: [] })),
    /already been registered/,
  );
  assert.throws(() => new Gauge({ name: "bad-name", help: "x", labelNames: [] }), /Invalid/);
  assert.throws(
    () => new Histogram({ name: "h", help: "x", labelNames: ["le"], buckets: [1] }),
    /le is a reserved/,
  );
  const histogram = new Histogram({ name: "h", help: "x", labelNames: [], buckets: [1] });
  assert.throws(() => histogram.observe(Number.NaN), /not a valid number/);
});

Deno.test("MetricRegistry appends families rendered elsewhere after its own", async () => {
  const registry = new MetricRegistry();
  registry.register(new Counter({ name: "a_total", help: "a", labelNames: [] }));
  assert.equal(
    await registry.render(["# HELP b b\n# TYPE b gauge\nb 1"]),
    "# HELP a_total a\n# TYPE a_total counter\na_total 0\n\n# HELP b b\n# TYPE b gauge\nb 1\n",
  );
});
