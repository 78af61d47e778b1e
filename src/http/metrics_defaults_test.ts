import assert from "node:assert/strict";
import process from "node:process";
import { NodeMetrics } from "./metrics.ts";
import { parseExposition } from "../../tests/helpers/prometheus.ts";

// The default process metrics start on the first scrape (prom-client is not imported
// before); these check that starting late changes none of what they report.

Deno.test("the first scrape's process CPU counters include what the process used before it", async () => {
  const metrics = new NodeMetrics();
  const before = process.cpuUsage();
  const { samples } = parseExposition((await metrics.render()).body);
  const total = samples.get("blixard_process_cpu_seconds_total{}") ?? 0;
  const user = samples.get("blixard_process_cpu_user_seconds_total{}") ?? 0;
  const system = samples.get("blixard_process_cpu_system_seconds_total{}") ?? 0;
  assert.ok(total >= (before.user + before.system) / 1e6, `${total} s`);
  assert.ok(user >= before.user / 1e6, `${user} s`);
  assert.ok(Math.abs(total - user - system) < 1e-3, `${total} = ${user} + ${system}`);
});

Deno.test("the first scrape reports event-loop delays measured, not the empty sampler's", async () => {
  const { samples } = parseExposition((await new NodeMetrics().render()).body);
  const min = samples.get("blixard_nodejs_eventloop_lag_min_seconds{}");
  const mean = samples.get("blixard_nodejs_eventloop_lag_mean_seconds{}");
  assert.ok(min !== undefined && min >= 0 && min < 60, `min ${min}`);
  assert.ok(mean !== undefined && Number.isFinite(mean), `mean ${mean}`);
});
