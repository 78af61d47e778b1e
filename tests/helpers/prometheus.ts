/**
 * A strict reader of the Prometheus text format 0.0.4, shared by the metrics unit tests
 * and the end-to-end tests that scrape real nodes.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Metric families and samples read from Prometheus text format 0.0.4. */
export interface Exposition {
  types: Map<string, string>;
  /** `name{a="1",b="2"}` (labels sorted) → value. */
  samples: Map<string, number>;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL_VALUE = String.raw`"(?:[^"\\\n]|\\[\\"n])*"`;
const LABEL = `([a-zA-Z_][a-zA-Z0-9_]*)=(${LABEL_VALUE})`;
const LABELS = `\\{(?:[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE},?)*\\}`;
// Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any
// case; prom-client writes NaN as `Nan`.
const VALUE = "[-+]?(?:[0-9.]+(?:e[-+]?[0-9]+)?|[Ii]nf|[Nn]a[Nn])";
const SAMPLE = new RegExp(`^(${NAME})(${LABELS})? (${VALUE})(?: -?[0-9]+)?$`);
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Record<string, string[]> = {
  counter: [""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

/**
 * A strict reader of the text format: every line is a HELP, a TYPE declared once and
 * before its samples, a sample of a declared family, or blank; no sample appears twice.
 */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const [index, line] of text.split("\n").entries()) {
    const where = `line ${index + 1}: ${line}`;
    if (line === "" || new RegExp(`^# HELP ${NAME} .*$`).test(line)) continue;
    const typeLine = new RegExp(`^# TYPE (${NAME}) (\\w+)$`).exec(line);
    if (typeLine !== null) {
      const [, name = "", type = ""] = typeLine;
      assert.ok(TYPES.has(type), `unknown type: ${where}`);
      assert.ok(!types.has(name), `TYPE declared twice: ${where}`);
      types.set(name, type);
      continue;
    }
    const sample = SAMPLE.exec(line);
    assert.ok(sample !== null, `not a sample: ${where}`);
    const [, name = "", labelText = "", valueText = ""] = sample;
    const family = [...types].find(([familyName, type]) =>
      (SUFFIXES[type] ?? []).some((suffix) => familyName + suffix === name)
    );
    assert.ok(family !== undefined, `sample without a TYPE: ${where}`);
    const labels = [...labelText.matchAll(new RegExp(LABEL, "g"))].map(([, key, value]) =>
      `${key}=${value}`
    ).sort();
    const key = `${name}{${labels.join(",")}}`;
    assert.ok(!samples.has(key), `duplicate sample: ${where}`);
    samples.set(
      key,
      /nan/i.test(valueText) ? Number.NaN : Number(valueText.replace(/inf/i, "Infinity")),
    );
  }
  return { types, samples };
}

/**
 * Scrapes `/metrics` on 127.0.0.1:`httpPort` and sums the samples whose key starts with
 * `prefix` (e.g. `blixard_http_requests_total{route="/bootstrap"`).
 */
export async function scrapeSum(httpPort: number, prefix: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  const { samples } = parseExposition(await response.text());
  let total = 0;
  for (const [sample, value] of samples) if (sample.startsWith(prefix)) total += value;
  return total;
}
