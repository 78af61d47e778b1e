/**
 * Alternated starts of two or more builds of the node: which one reaches `/health` sooner,
 * with less CPU. Each run spawns one single node of each build in turn (A, B, A, B…, fresh data
 * dir each), times spawn → `GET /health` 200 and reads the process's CPU (user + system,
 * `/proc/PID/stat`) at that moment. One warm-up start of each build comes first, so that
 * both run with Deno's code cache, and every start passes the nodes' V8 flags (V8 rejects
 * a code cache written under other flags). On a shared machine only alternation in one
 * sitting compares two builds: the load moves both alike.
 *
 * Usage: deno run -A scripts/bundle_ab.ts [--runs 12] [--ports LOW-HIGH] A.js B.js [C.js…]
 *
 * Prints the medians (and quartiles) of each, and the load average before and after.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { NodeGroup } from "../tests/helpers/node_process.ts";
import { parsePortRange, useBindPortRange } from "../tests/helpers/ports.ts";
import { cpuSeconds } from "./bench.ts";
import { NODE_V8_FLAGS } from "./compile.ts";

const POLL_MS = 2;
const WAIT_MS = 30_000;

/** Milliseconds from spawn to `/health` 200, and the CPU the node used until then. */
async function startOnce(mainPath: string): Promise<{ wallMs: number; cpuMs: number }> {
  const group = new NodeGroup();
  try {
    const node = await group.start({
      id: 1,
      mainPath,
      denoFlags: [`--v8-flags=${NODE_V8_FLAGS.join(",")}`],
      env: { BLIXARD_P2P_ENABLED: "true", BLIXARD_ENABLE_MDNS_DISCOVERY: "false" },
    });
    const deadline = node.startedAtMs + WAIT_MS;
    while (performance.now() < deadline) {
      if (node.exitStatus !== null) throw new Error(`${mainPath} exited:\n${node.stderr}`);
      try {
        const response = await fetch(`http://127.0.0.1:${node.httpPort}/health`);
        await response.body?.cancel();
        if (response.status === 200) {
          const wallMs = performance.now() - node.startedAtMs;
          return { wallMs, cpuMs: cpuSeconds(node.pid) * 1000 };
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`${mainPath}: no /health 200 within ${WAIT_MS} ms`);
  } finally {
    await group.cleanup();
  }
}

function quartiles(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (fraction: number) => sorted[Math.floor(fraction * (sorted.length - 1))]!;
  return `${at(0.5).toFixed(0)} (${at(0.25).toFixed(0)}–${at(0.75).toFixed(0)})`;
}

const loadAverage = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { runs: { type: "string", default: "12" }, ports: { type: "string" } },
  });
  const runs = Number(values.runs);
  const range = values.ports === undefined ? undefined : parsePortRange(values.ports);
  if (positionals.length < 2 || !Number.isInteger(runs) || runs < 1 || range === null) {
    console.error("usage: bundle_ab.ts [--runs N] [--ports LOW-HIGH] A.js B.js [C.js…]");
    Deno.exit(2);
  }
  if (range !== undefined) useBindPortRange(...range);
  const builds = positionals.map((path) => ({ path, wall: [] as number[], cpu: [] as number[] }));
  console.log(`load before: ${loadAverage()}`);
  for (const build of builds) await startOnce(build.path);
  for (let run = 0; run < runs; run++) {
    for (const build of builds) {
      const { wallMs, cpuMs } = await startOnce(build.path);
      build.wall.push(wallMs);
      build.cpu.push(cpuMs);
    }
  }
  console.log(`load after: ${loadAverage()}`);
  for (const build of builds) {
    console.log(
      `${build.path}: spawn → /health ${quartiles(build.wall)} ms, CPU ${
        quartiles(build.cpu)
      } ms (median (quartiles) of ${runs})`,
    );
  }
}
