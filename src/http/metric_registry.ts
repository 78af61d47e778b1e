/**
 * Counters, gauges and histograms, and their rendering in the Prometheus text format 0.0.4,
 * written exactly as `prom-client` 15 writes them (family order of registration, label order
 * of the first values set, `Nan`/`+Inf`, histogram buckets cumulative with `le` first), so
 * that `/metrics` reads the same as when every metric was a `prom-client` one.
 *
 * Why not `prom-client` itself: importing it loads a dozen modules of Deno's Node layer and
 * cost a node about 90 ms of CPU and 10 MiB of memory at every start, before `/health`
 * could answer (docs/benchmarks.md, "Start-up"). `prom-client` is still what collects the
 * process and runtime metrics, loaded on the first scrape (`metrics.ts`).
 *
 * @module
 */

/** Label values of one sample; every name must be one of the metric's label names. */
export type LabelValues<Label extends string> = Partial<Record<Label, string | number>>;

/** What every metric is built from. */
export interface MetricConfig<Label extends string> {
  /** The full name, prefix included. */
  name: string;
  help: string;
  labelNames: readonly Label[];
  /** Called at each scrape before rendering: for metrics that read state. */
  collect?: () => void | Promise<void>;
}

/** Content type of the text format this module writes. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Sample {
  /** The metric's name, or its name with `_bucket`, `_sum` or `_count`. */
  name: string;
  /** Already formatted `name="value"` pairs, in order. */
  labels: string[];
  value: number;
}

/** A family of samples sharing a name, help and type. */
abstract class Metric<Label extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly Label[];
  abstract readonly type: "counter" | "gauge" | "histogram";
  readonly #collect: (() => void | Promise<void>) | undefined;

  constructor(config: MetricConfig<Label>) {
    if (!METRIC_NAME.test(config.name)) throw new Error("Invalid metric name");
    if (!config.labelNames.every((label) => LABEL_NAME.test(label))) {
      throw new Error("Invalid label name");
    }
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.#collect = config.collect;
  }

  /** The family in text format: HELP, TYPE and one line per sample. */
  async render(): Promise<string> {
    await this.#collect?.();
    const name = escapeText(this.name);
    const lines = [`# HELP ${name} ${escapeText(this.help)}`, `# TYPE ${name} ${this.type}`];
    for (const sample of this.samples()) {
      const labels = sample.labels.length === 0 ? "" : `{${sample.labels.join(",")}}`;
      lines.push(`${sample.name}${labels} ${formatValue(sample.value)}`);
    }
    return lines.join("\n");
  }

  protected abstract samples(): Sample[];

  /** The key of a label set (its values in sorted name order); throws on an unknown name. */
  protected keyOf(labels: LabelValues<Label>): string {
    let key = "";
    for (const name of Object.keys(labels).sort()) {
      if (!this.labelNames.includes(name as Label)) {
        throw new Error(
          `Added label "${name}" is not included in initial labelset: ${
            JSON.stringify(this.labelNames)
          }`,
        );
      }
      const value = labels[name as Label];
      if (value !== undefined) key += `${name}:${value},`;
    }
    return key;
  }
}

/** One value per label set, with the labels as first given. */
interface Series {
  labels: string[];
  value: number;
}

/** A metric with one value per label set: a counter or a gauge. */
abstract class ValueMetric<Label extends string> extends Metric<Label> {
  protected readonly series = new Map<string, Series>();

  /** Without label names, the metric starts as one sample at 0. */
  constructor(config: MetricConfig<Label>) {
    super(config);
    if (this.labelNames.length === 0) this.series.set("", { labels: [], value: 0 });
  }

  protected samples(): Sample[] {
    return [...this.series.values()].map((series) => ({ name: this.name, ...series }));
  }
}

/** A value that only goes up. */
export class Counter<Label extends string = string> extends ValueMetric<Label> {
  readonly type = "counter";

  /** Adds `value` (default 1; 0 makes the series appear) to the series of `labels`. */
  inc(labels?: LabelValues<Label> | number, value?: number): void {
    if (typeof labels === "number" || labels === undefined) {
      this.#add({}, labels);
    } else {
      this.#add(labels, value);
    }
  }

  #add(labels: LabelValues<Label>, value: number | undefined): void {
    const key = this.keyOf(labels);
    if (value !== undefined && value !== 0 && !Number.isFinite(value)) {
      throw new TypeError(`Value is not a valid number: ${value}`);
    }
    if (value !== undefined && value < 0) {
      throw new Error("It is not possible to decrease a counter");
    }
    const series = this.series.get(key);
    if (series === undefined) {
      this.series.set(key, { labels: formatLabels(labels), value: value ?? 1 });
    } else {
      series.value += value ?? 1;
    }
  }
}

/** A value that is set. */
export class Gauge<Label extends string = string> extends ValueMetric<Label> {
  readonly type = "gauge";

  /** Sets the series of `labels` (or the unlabelled one) to `value`. */
  set(labels: LabelValues<Label> | number, value?: number): void {
    const [labelSet, number] = typeof labels === "number" ? [{}, labels] : [labels, value];
    if (typeof number !== "number") throw new TypeError(`Value is not a valid number: ${number}`);
    const key = this.keyOf(labelSet);
    const series = this.series.get(key);
    // As prom-client: the position of the series stays, its labels are the latest given.
    if (series === undefined) {
      this.series.set(key, { labels: formatLabels(labelSet), value: number });
    } else {
      series.labels = formatLabels(labelSet);
      series.value = number;
    }
  }
}

/** What {@linkcode Histogram} needs beyond a metric's name, help and labels. */
export interface HistogramConfig<Label extends string> extends MetricConfig<Label> {
  /** Upper bounds of the buckets, ascending. */
  buckets: readonly number[];
}

interface HistogramSeries {
  labels: string[];
  /** Observations per bucket (not cumulative), in the order of the bounds. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into buckets, with their sum and count. */
export class Histogram<Label extends string = string> extends Metric<Label> {
  readonly type = "histogram";
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  /** Registers the histogram; without label names it starts as one empty series. */
  constructor(config: HistogramConfig<Label>) {
    super(config);
    if (this.labelNames.includes("le" as Label)) throw new Error("le is a reserved label keyword");
    this.#bounds = [...config.buckets];
    if (this.labelNames.length === 0) this.#series.set("", this.#emptySeries({}));
  }

  /** Counts one observation of `value` in the series of `labels`. */
  observe(labels: LabelValues<Label> | number, value?: number): void {
    const [labelSet, number] = typeof labels === "number" ? [{}, labels] : [labels, value];
    const key = this.keyOf(labelSet);
    if (typeof number !== "number" || !Number.isFinite(number)) {
      throw new TypeError(`Value is not a valid number: ${number}`);
    }
    let series = this.#series.get(key);
    if (series === undefined) {
      series = this.#emptySeries(labelSet);
      this.#series.set(key, series);
    }
    series.sum += number;
    series.count += 1;
    const bucket = this.#bounds.findIndex((bound) => number <= bound);
    if (bucket !== -1) series.counts[bucket]! += 1;
  }

  #emptySeries(labels: LabelValues<Label>): HistogramSeries {
    return { labels: formatLabels(labels), counts: this.#bounds.map(() => 0), sum: 0, count: 0 };
  }

  protected samples(): Sample[] {
    const samples: Sample[] = [];
    for (const series of this.#series.values()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, index) => {
        cumulative += series.counts[index]!;
        samples.push({
          name: `${this.name}_bucket`,
          labels: [`le="${bound}"`, ...series.labels],
          value: cumulative,
        });
      });
      samples.push(
        {
          name: `${this.name}_bucket`,
          labels: ['le="+Inf"', ...series.labels],
          value: series.count,
        },
        { name: `${this.name}_sum`, labels: series.labels, value: series.sum },
        { name: `${this.name}_count`, labels: series.labels, value: series.count },
      );
    }
    return samples;
  }
}

/** Any metric a {@linkcode MetricRegistry} holds. */
export type AnyMetric = Counter | Gauge | Histogram;

/** The metrics of one node, rendered in the order they were registered. */
export class MetricRegistry {
  readonly contentType = PROMETHEUS_CONTENT_TYPE;
  readonly #metrics = new Map<string, Metric<string>>();

  /** Adds `metric`; a second metric of the same name is refused. */
  register<M extends Metric<string>>(metric: M): M {
    const existing = this.#metrics.get(metric.name);
    if (existing !== undefined && existing !== metric) {
      throw new Error(`A metric with the name ${metric.name} has already been registered.`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /**
   * Every family in text format; `more` are families rendered elsewhere, in the same
   * format, appended after these.
   */
  async render(more: readonly string[] = []): Promise<string> {
    const families: string[] = [];
    for (const metric of this.#metrics.values()) families.push(await metric.render());
    return `${[...families, ...more].join("\n\n")}\n`;
  }
}

function formatLabels(labels: Record<string, string | number | undefined>): string[] {
  return Object.entries(labels).map(([name, value]) =>
    `${name}="${typeof value === "string" ? escapeText(value).replace(/"/g, '\\"') : value}"`
  );
}

function escapeText(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "Nan";
  if (!Number.isFinite(value)) return value < 0 ? "-Inf" : "+Inf";
  return `${value}`;
}
