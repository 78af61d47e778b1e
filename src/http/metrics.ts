/**
 * `NodeMetrics`: the node's Prometheus metrics, in a registry of its own (so that two nodes
 * in one process, as in tests, do not mix), every name prefixed `blixard_`. The node's own
 * metrics are `metric_registry.ts`'s; the default process metrics are `prom-client`'s, which
 * is imported on the first scrape rather than at start (see {@linkcode NodeMetrics.render}).
 *
 * To add a metric, add one field built with {@linkcode defineCounter} or
 * {@linkcode defineGauge} and, where callers should not touch labels, a `record…` method.
 * A gauge that mirrors node state (term, role, commit index) is best defined with a
 * `collect()` that reads the node's status snapshot at scrape time, so nothing has to
 * remember to update it.
 *
 * Default process metrics under Deno 2.9: the `process_*` family (CPU, resident and
 * virtual memory, open and max file descriptors, start time), the event-loop lag family and
 * the V8 heap families work. These `prom-client` defaults are removed because Deno does
 * not feed them: `nodejs_gc_duration_seconds` (no GC performance entries: always empty),
 * `nodejs_active_handles*`, `nodejs_active_requests*` (always zero) and
 * `nodejs_active_resources*` (sees only prom-client's own `setImmediate`), and
 * `nodejs_version_info`, which reports Deno's Node-compatibility version; `blixard_build_info`
 * carries the Blixard and Deno versions instead.
 *
 * @module
 */

import type { Counter as PromCounter } from "prom-client";
import { Counter, Gauge, MetricRegistry } from "./metric_registry.ts";
import { VERSION } from "../version.ts";

/** Prefix of every metric name. */
export const METRIC_PREFIX = "blixard_";

/**
 * How often the event-loop delay is sampled. prom-client's default, 10 ms, cost an idle
 * node about 0.9% of a core under Deno 2.9 (measured: 44 ms CPU per 5 s, against 8 ms
 * without the sampler); 100 ms costs about 0.3%. Each sample still measures the whole
 * delay, and the delays that matter to Raft (election timeouts) are far above 100 ms.
 */
export const EVENT_LOOP_SAMPLE_INTERVAL_MS = 100;

/**
 * The first scrape starts the default collectors and waits until the event-loop delay
 * sampler has this many samples (without any, prom-client reports a minimum of 9.2e9 s and
 * a mean of NaN), but no longer than {@linkcode DEFAULT_METRICS_FIRST_WAIT_MS}. Later
 * scrapes report the delay since the previous one, as before.
 */
export const EVENT_LOOP_SAMPLES_FIRST = 3;
/** The longest the first scrape waits for {@linkcode EVENT_LOOP_SAMPLES_FIRST} samples. */
export const DEFAULT_METRICS_FIRST_WAIT_MS = 5_000;

/** Default collectors that report nothing true under Deno (see the module doc). */
export const DEFAULT_METRICS_REMOVED = [
  "nodejs_gc_duration_seconds",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_requests",
  "nodejs_active_requests_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
  "nodejs_version_info",
] as const;

/**
 * How one client-side fetch of a peer's `/bootstrap` ended: `ok`, `unreachable` (no TCP
 * connection), `timeout`, `http_error` (status not 200), `rate_limited` (429), `invalid`
 * (body too large or failing the schema), `wrong_identity` (answer from another node than
 * expected), `bad_signature` (cluster secret set and the HMAC is missing or wrong).
 */
export const BOOTSTRAP_FETCH_OUTCOMES = [
  "ok",
  "unreachable",
  "timeout",
  "http_error",
  "rate_limited",
  "invalid",
  "wrong_identity",
  "bad_signature",
] as const;
/** A label value of `blixard_bootstrap_fetches_total{outcome}`. */
export type BootstrapFetchOutcome = typeof BOOTSTRAP_FETCH_OUTCOMES[number];

/**
 * The events whose log lines are rate limited: `raft_connection_refused` (a stranger's key
 * on `blixard/raft/1`) and `secret_refused` (a wrong proof of the cluster secret).
 */
export const LOG_RATE_LIMITED_EVENTS = ["raft_connection_refused", "secret_refused"] as const;
/** A label value of `blixard_log_lines_suppressed_total{event}`. */
export type LogRateLimitedEvent = typeof LOG_RATE_LIMITED_EVENTS[number];

/** Whether this node opened the P2P connection (`outgoing`) or accepted it (`incoming`). */
export type P2pConnectionDirection = "incoming" | "outgoing";

/**
 * How a P2P connection attempt ended: `ok`, `refused` (by policy, e.g. not a member),
 * `timeout` (the connect deadline passed) or `failed` (any other error).
 */
export const P2P_CONNECTION_OUTCOMES = ["ok", "refused", "timeout", "failed"] as const;
/** A label value of `blixard_p2p_connections_total{outcome}`. */
export type P2pConnectionOutcome = typeof P2P_CONNECTION_OUTCOMES[number];

/** One P2P connection attempt, for {@linkcode NodeMetrics.recordP2pConnection}. */
export interface P2pConnectionEvent {
  direction: P2pConnectionDirection;
  /** The protocol, e.g. `blixard/raft/1`: one of the node's own constants. */
  alpn: string;
  outcome: P2pConnectionOutcome;
}

/** Distinct ALPN label values allowed: the node speaks a handful of protocols. */
export const ALPN_LABELS_MAX = 16;
const ALPN_LABEL = /^[\x21-\x7e]{1,64}$/;
const METRIC_NAME = /^[a-z][a-z0-9_]*$/;

/** What {@linkcode defineCounter} and {@linkcode defineGauge} need, the name without prefix. */
export interface MetricDefinition<Label extends string> {
  name: string;
  help: string;
  labelNames: readonly Label[];
  /** Called at each scrape before rendering: for gauges that read state. */
  collect?: () => void | Promise<void>;
}

function prefixedName(name: string): string {
  if (!METRIC_NAME.test(name) || name.startsWith(METRIC_PREFIX)) {
    throw new Error(`metric name ${JSON.stringify(name)}: lowercase snake case, without prefix`);
  }
  return METRIC_PREFIX + name;
}

/** Registers a counter named `blixard_<name>` in `registry`. */
export function defineCounter<Label extends string>(
  registry: MetricRegistry,
  definition: MetricDefinition<Label>,
): Counter<Label> {
  return registry.register(new Counter({ ...definition, name: prefixedName(definition.name) }));
}

/** Registers a gauge named `blixard_<name>` in `registry`. */
export function defineGauge<Label extends string>(
  registry: MetricRegistry,
  definition: MetricDefinition<Label>,
): Gauge<Label> {
  return registry.register(new Gauge({ ...definition, name: prefixedName(definition.name) }));
}

/** Options of {@linkcode NodeMetrics}. */
export interface NodeMetricsOptions {
  /** Whether to add the default process metrics (default `true`). */
  defaultMetrics?: boolean;
}

/** The node's metrics and their Prometheus text rendering. */
export class NodeMetrics {
  /** The registry holding every metric of this node. */
  readonly registry: MetricRegistry = new MetricRegistry();

  /** Every HTTP request served, by route (`other` for unknown paths) and status code. */
  readonly httpRequestsTotal: Counter<"route" | "status"> = defineCounter(this.registry, {
    name: "http_requests_total",
    help: "HTTP requests served, by route and status code.",
    labelNames: ["route", "status"],
  });

  /** Fetches of a peer's `/bootstrap` made by this node while joining, by outcome. */
  readonly bootstrapFetchesTotal: Counter<"outcome"> = defineCounter(this.registry, {
    name: "bootstrap_fetches_total",
    help: "Fetches of a peer's /bootstrap made while joining, by outcome.",
    labelNames: ["outcome"],
  });

  /** P2P connection attempts, by direction, protocol and outcome. */
  readonly p2pConnectionsTotal: Counter<"direction" | "alpn" | "outcome"> = defineCounter(
    this.registry,
    {
      name: "p2p_connections_total",
      help: "P2P connection attempts, by direction, ALPN and outcome.",
      labelNames: ["direction", "alpn", "outcome"],
    },
  );

  /** P2P connections open now, by protocol. */
  readonly p2pConnectionsOpen: Gauge<"alpn"> = defineGauge(this.registry, {
    name: "p2p_connections_open",
    help: "P2P connections open now, by ALPN.",
    labelNames: ["alpn"],
  });

  /** Log lines that a rate limit suppressed, by the event they were about. */
  readonly logLinesSuppressedTotal: Counter<"event"> = defineCounter(this.registry, {
    name: "log_lines_suppressed_total",
    help: "Log lines suppressed by a rate limit (events strangers can cause), by event.",
    labelNames: ["event"],
  });

  /** Always 1; its labels carry the versions of Blixard and Deno. */
  readonly buildInfo: Gauge<"version" | "deno"> = defineGauge(this.registry, {
    name: "build_info",
    help: "Always 1; labels carry the Blixard and Deno versions.",
    labelNames: ["version", "deno"],
  });

  // Invariant: every count is ≥ 0 and equals the gauge's value for that ALPN.
  #openByAlpn = new Map<string, number>();
  readonly #defaultMetrics: boolean;
  /** The default metrics' rendering, once the first scrape has started them. */
  #renderDefaults: Promise<() => Promise<string>> | null = null;

  /** Registers every metric; with `defaultMetrics`, the first scrape adds the process ones. */
  constructor(options: NodeMetricsOptions = {}) {
    this.#defaultMetrics = options.defaultMetrics ?? true;
    this.buildInfo.set({ version: VERSION, deno: Deno.version.deno }, 1);
    // Known outcomes start at zero so that rate() and absent-series alerts work at once.
    for (const outcome of BOOTSTRAP_FETCH_OUTCOMES) this.bootstrapFetchesTotal.inc({ outcome }, 0);
    for (const event of LOG_RATE_LIMITED_EVENTS) this.logLinesSuppressedTotal.inc({ event }, 0);
  }

  /** Counts one HTTP request; `route` is a known path or `other`, never a raw URL. */
  recordHttpRequest(route: string, status: number): void {
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new Error(`HTTP status ${status} is not a status code`);
    }
    this.httpRequestsTotal.inc({ route, status: String(status) });
  }

  /** Counts one log line about `event` that a rate limit suppressed. */
  recordLogLineSuppressed(event: LogRateLimitedEvent): void {
    this.logLinesSuppressedTotal.inc({ event });
  }

  /** Counts one fetch of a peer's `/bootstrap`. */
  recordBootstrapFetch(outcome: BootstrapFetchOutcome): void {
    this.bootstrapFetchesTotal.inc({ outcome });
  }

  /** Counts one P2P connection attempt. */
  recordP2pConnection(event: P2pConnectionEvent): void {
    this.#checkAlpn(event.alpn);
    this.p2pConnectionsTotal.inc({ ...event });
  }

  /** A P2P connection for `alpn` is now open; pair with {@linkcode p2pConnectionClosed}. */
  p2pConnectionOpened(alpn: string): void {
    this.#checkAlpn(alpn);
    this.#setOpen(alpn, (this.#openByAlpn.get(alpn) ?? 0) + 1);
  }

  /** A P2P connection for `alpn` that was counted as open has closed. */
  p2pConnectionClosed(alpn: string): void {
    const open = this.#openByAlpn.get(alpn) ?? 0;
    if (open === 0) throw new Error(`p2pConnectionClosed(${alpn}) without a matching open`);
    this.#setOpen(alpn, open - 1);
  }

  /**
   * The metrics in Prometheus text format, with the content type to answer with. The first
   * call starts the default process metrics (importing `prom-client`, about 90 ms of CPU,
   * which a start no longer pays) and waits for the event-loop sampler's first samples
   * ({@linkcode EVENT_LOOP_SAMPLES_FIRST}).
   */
  async render(): Promise<{ contentType: string; body: string }> {
    if (!this.#defaultMetrics) {
      return { contentType: this.registry.contentType, body: await this.registry.render() };
    }
    this.#renderDefaults ??= startDefaultMetrics();
    const renderDefaults = await this.#renderDefaults;
    // The node's own families first, then prom-client's, in prom-client's own format.
    const defaults = (await renderDefaults()).replace(/\n$/, "");
    return {
      contentType: this.registry.contentType,
      body: await this.registry.render(defaults === "" ? [] : [defaults]),
    };
  }

  #setOpen(alpn: string, open: number): void {
    this.#openByAlpn.set(alpn, open);
    this.p2pConnectionsOpen.set({ alpn }, open);
  }

  /** ALPN label values are bounded in form and number: each one is a time series. */
  #checkAlpn(alpn: string): void {
    if (!ALPN_LABEL.test(alpn)) throw new Error(`ALPN label ${JSON.stringify(alpn)} is invalid`);
    if (!this.#openByAlpn.has(alpn)) {
      if (this.#openByAlpn.size >= ALPN_LABELS_MAX) {
        throw new Error(`more than ${ALPN_LABELS_MAX} ALPN label values: ${alpn}`);
      }
      this.#setOpen(alpn, 0);
    }
  }
}

/**
 * Starts prom-client's default collectors in a registry of their own, without those
 * Deno does not feed, and resolves to the function that renders them once the event-loop
 * sampler has a few samples.
 */
async function startDefaultMetrics(): Promise<() => Promise<string>> {
  const [{ collectDefaultMetrics, Registry }, { default: process }, { monitorEventLoopDelay }] =
    await Promise.all([
      import("./prom_client.ts"),
      import("node:process"),
      import("node:perf_hooks"),
    ]);
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix: METRIC_PREFIX,
    eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_INTERVAL_MS,
  });
  // The CPU counters count from their creation, now; what the process used before counts too.
  const used = process.cpuUsage();
  for (
    const [name, micros] of [
      ["process_cpu_user_seconds_total", used.user],
      ["process_cpu_system_seconds_total", used.system],
      ["process_cpu_seconds_total", used.user + used.system],
    ] as const
  ) {
    (registry.getSingleMetric(METRIC_PREFIX + name) as PromCounter | undefined)?.inc(micros / 1e6);
  }
  for (const name of DEFAULT_METRICS_REMOVED) registry.removeSingleMetric(METRIC_PREFIX + name);
  // A sampler started after prom-client's has no more samples than it: once this one has
  // enough, prom-client's has too.
  const probe = monitorEventLoopDelay({ resolution: EVENT_LOOP_SAMPLE_INTERVAL_MS });
  probe.enable();
  const deadline = performance.now() + DEFAULT_METRICS_FIRST_WAIT_MS;
  while (probe.count < EVENT_LOOP_SAMPLES_FIRST && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, EVENT_LOOP_SAMPLE_INTERVAL_MS));
  }
  probe.disable();
  return () => registry.metrics();
}
