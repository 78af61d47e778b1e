/**
 * Alternated starts of two or more builds of the node: which one reaches `/health` sooner,
 * with less CPU. Each run spawns one single node of each build in turn (A, B, A, B…, fresh data
 * dir each), times spawn → `GET /health` 200 and reads the process's CPU (user + system,
 * `/proc/PID/stat`) at that moment. One warm-up start of each build comes first, so that
 * both run with Deno's code cache, and every start passes the nodes' V8 flags (V8 rejects
 * a code cache written under other flags). On a shared machine only alternation in one
 * sitting compares two builds: the load moves both alike.
 *
 * With `--ticket`, the figure is a join instead (issues 10 and 11's): a 3-node cluster of
 * the first build, and joiners by `--join TICKET` alone taking the builds in turn, each timed
 * from its spawn to its own "promoted to voter" line, with its boot (spawn → modules loaded),
 * and removed afterwards so that every joiner joins the same cluster.
 *
 * Usage: deno run -A scripts/bundle_ab.ts [--runs 12] [--ports LOW-HIGH] [--ticket]
 *          A.js B.js [C.js…]
 *
 * Prints the medians (and quartiles) of each, the same of each run's difference to the
 * first build, and the load average before and after.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BlixardClient } from "../src/client/client.ts";
import { waitForVoters } from "../tests/helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../tests/helpers/node_process.ts";
import { parsePortRange, useBindPortRange } from "../tests/helpers/ports.ts";
import { startUntilHealthy } from "./bench.ts";
import { timeJoin } from "./bench_join_phases.ts";
import { NODE_V8_FLAGS } from "./compile.ts";

/** How every node here starts: the binary's V8 flags, P2P on, mDNS off. */
const nodeSettings = (mainPath: string) => ({
  mainPath,
  denoFlags: [`--v8-flags=${NODE_V8_FLAGS.join(",")}`],
  env: { BLIXARD_P2P_ENABLED: "true", BLIXARD_ENABLE_MDNS_DISCOVERY: "false" },
});

/** What one start (or join) of a build measured. */
interface Figures {
  /** Spawn → `/health` 200, or spawn → voter with `--ticket`. */
  wallMs: number;
  /** CPU until `/health` 200; with `--ticket`, the joiner's boot (spawn → modules loaded). */
  otherMs: number;
}

/** Milliseconds from spawn to `/health` 200, and the CPU the node used until then. */
async function startOnce(mainPath: string): Promise<Figures> {
  const group = new NodeGroup();
  try {
    const started = await startUntilHealthy(group, { id: 1, ...nodeSettings(mainPath) });
    return { wallMs: started.startupMs, otherMs: started.cpuMs };
  } finally {
    await group.cleanup();
  }
}

/**
 * Joins by ticket into one cluster of `founders`' build: `next(path)` spawns a joiner of that
 * build, times its join, removes it, and gives its figures.
 */
async function ticketJoins(
  group: NodeGroup,
  founders: string,
): Promise<{ next: (mainPath: string) => Promise<Figures>; close: () => Promise<void> }> {
  const first = await group.start({ id: 1, ...nodeSettings(founders) });
  const nodes: NodeProcess[] = [first];
  await waitForVoters(first, 1);
  for (const id of [2, 3]) {
    nodes.push(await group.start({ id, ...nodeSettings(founders), peers: [first.address] }));
  }
  await waitForVoters(first, 3);
  const client = await BlixardClient.connect(first.address);
  let id = 20;
  return {
    next: async (mainPath) => {
      const { ticket } = await client.invite({ ttlMs: 60_000, uses: 1, createdBy: "bundle_ab" });
      const leaderId = (await client.status()).leader_id;
      const leader = nodes.find((node) => node.id === leaderId) ?? first;
      const spawnedAtMs = Date.now();
      const joiner = await group.start({
        id: ++id,
        ...nodeSettings(mainPath),
        args: ["--join", ticket],
      });
      const joined = await timeJoin(joiner, { leader, spawnedAtMs });
      await joiner.kill();
      await client.remove(joiner.id, { force: true });
      const boot = joined.phases.get("startNode (boot, module loading done)");
      return { wallMs: joined.ms, otherMs: boot ?? Number.NaN };
    },
    close: () => client.close(),
  };
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
    options: {
      runs: { type: "string", default: "12" },
      ports: { type: "string" },
      ticket: { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs);
  const range = values.ports === undefined ? undefined : parsePortRange(values.ports);
  if (positionals.length < 2 || !Number.isInteger(runs) || runs < 1 || range === null) {
    console.error(
      "usage: bundle_ab.ts [--runs N] [--ports LOW-HIGH] [--ticket] A.js B.js [C.js…]",
    );
    Deno.exit(2);
  }
  if (range !== undefined) useBindPortRange(...range);
  const builds = positionals.map((path) => ({ path, wall: [] as number[], other: [] as number[] }));
  console.log(`load before: ${loadAverage()}`);
  const group = new NodeGroup();
  try {
    const joins = values.ticket ? await ticketJoins(group, builds[0]!.path) : null;
    const once = joins?.next ?? startOnce;
    for (const build of builds) await once(build.path);
    for (let run = 0; run < runs; run++) {
      for (const build of builds) {
        const { wallMs, otherMs } = await once(build.path);
        build.wall.push(wallMs);
        build.other.push(otherMs);
      }
    }
    await joins?.close();
  } finally {
    await group.cleanup();
  }
  console.log(`load after: ${loadAverage()}`);
  const [wallName, otherName] = values.ticket
    ? ["ticket join, spawn → voter", "boot"]
    : ["spawn → /health", "CPU"];
  for (const build of builds) {
    console.log(
      `${build.path}: ${wallName} ${quartiles(build.wall)} ms, ${otherName} ${
        quartiles(build.other)
      } ms (median (quartiles) of ${runs})`,
    );
  }
  // Each run's builds ran back to back, so a run's differences carry less of the load's drift
  // than the difference of two medians.
  const first = builds[0]!;
  for (const build of builds.slice(1)) {
    const differences = (of: (b: typeof build) => number[]) =>
      quartiles(of(build).map((value, run) => value - of(first)[run]!));
    console.log(
      `${build.path} − ${first.path}, run by run: ${wallName} ${
        differences((b) => b.wall)
      } ms, ${otherName} ${differences((b) => b.other)} ms`,
    );
  }
}
