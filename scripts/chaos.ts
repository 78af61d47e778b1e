/**
 * `deno task chaos`: faults on real node processes on loopback, with every client
 * operation recorded and checked for linearizability, and every acknowledged write read
 * back (tests/chaos/harness/). Prints one table and writes the JSON report.
 *
 *   deno task chaos                              every profile, the issue's counts, 3 and 5 nodes
 *   deno task chaos --profile crashes --cycles 5 one profile, 5 cycles per fault and size
 *   deno task chaos --fault isolate-leader --nodes 5 --minutes 10
 *   deno task chaos --fuzz [--fuzz-runs 100000]  fuzz every decoder instead
 *   deno task chaos --fuzz --fuzz-target bootstrap  only the decoders whose name has it
 *
 * Partitions need root and nftables, the disk profile root and mount (tmpfs); without
 * them those faults are skipped with a line saying why. The floods profile also prints the
 * measuring writer's throughput and p99 during each flood against a quiet run. Traffic stays on 127.0.0.1; the
 * harness kills only the processes it started, by pid, and removes its nftables table
 * and mounts when it ends, fails, or gets SIGINT/SIGTERM.
 *
 * Exit codes: 0 no violation, lost write or error; 1 otherwise; 2 usage error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runFuzzTargets } from "../tests/fuzz/decoder_targets.ts";
import {
  addDetail,
  buildReport,
  emptyFigures,
  type FaultFigures,
  formatTable,
} from "../tests/chaos/harness/chaos_report.ts";
import {
  type FaultEntry,
  INTERRUPTED,
  RECOVERY_MS_DEFAULT,
  releaseOnSignal,
  runFaults,
} from "../tests/chaos/harness/fault_runner.ts";
import { type Fault, FAULTS, PROFILE_NAMES } from "../tests/chaos/harness/faults.ts";
import { unavailableReason } from "../tests/chaos/harness/system_command.ts";
import { parsePortRange, useBindPortRange } from "../tests/helpers/ports.ts";

const USAGE = `usage: deno task chaos [--profile P[,P…]] [--fault F[,F…]] [--cycles N] [--nodes 3,5]
                       [--clients 4] [--minutes 120] [--recovery-minutes N] [--json PATH]
                       [--ports LOW-HIGH]
       deno task chaos --fuzz [--fuzz-runs 100000] [--fuzz-target NAME-PART]
profiles: ${PROFILE_NAMES.join(", ")}
faults: ${FAULTS.map((fault) => fault.name).join(", ")}
--cycles N: cycles per fault and cluster size (default: the fault's own count, split over the sizes)
--recovery-minutes N: how long the cluster may take to recover from a fault (slower is
                  unavailability; only beyond it does the run fail); default ${
  RECOVERY_MS_DEFAULT / 60_000
}
--ports LOW-HIGH: the nodes' bind ports (UDP) from this range, their HTTP ports 1000 above
                  (default 20000-30999)`;

/** Fresh clusters one profile and size may use after failed runs. */
const RUNS_PER_SIZE_MAX = 10;

class UsageError extends Error {}

interface Options {
  faults: Fault[];
  cycles: number | null;
  sizes: number[];
  clients: number;
  minutes: number;
  /** How long a cycle waits for the cluster to recover before the run fails (ms). */
  recoveryMs: number;
  json: string;
  fuzz: boolean;
  fuzzRuns: number;
  /** Only the fuzz targets whose name contains this. */
  fuzzTarget: string | null;
}

function positiveInteger(text: string, flag: string, max: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new UsageError(`--${flag} ${text}: must be an integer from 1 to ${max}`);
  }
  return value;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      profile: { type: "string" },
      fault: { type: "string" },
      cycles: { type: "string" },
      nodes: { type: "string", default: "3,5" },
      clients: { type: "string", default: "4" },
      minutes: { type: "string", default: "120" },
      "recovery-minutes": { type: "string" },
      json: { type: "string" },
      fuzz: { type: "boolean", default: false },
      "fuzz-runs": { type: "string", default: "100000" },
      "fuzz-target": { type: "string" },
      ports: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const profiles = values.profile?.split(",") ?? [...PROFILE_NAMES];
  for (const profile of profiles) {
    if (!(PROFILE_NAMES as readonly string[]).includes(profile)) {
      throw new UsageError(`--profile ${profile}: not one of ${PROFILE_NAMES.join(", ")}`);
    }
  }
  const faultNames = values.fault?.split(",") ?? null;
  for (const name of faultNames ?? []) {
    if (!FAULTS.some((fault) => fault.name === name)) {
      throw new UsageError(`--fault ${name}: not one of ${FAULTS.map((f) => f.name).join(", ")}`);
    }
  }
  const faults = FAULTS.filter((fault) =>
    faultNames === null ? profiles.includes(fault.profile) : faultNames.includes(fault.name)
  );
  const sizes = values.nodes.split(",").map((text) => positiveInteger(text, "nodes", 7));
  for (const size of sizes) {
    if (size < 3) throw new UsageError(`--nodes ${size}: faults need at least 3 nodes`);
  }
  if (values.ports !== undefined) {
    const range = parsePortRange(values.ports);
    const [low, high] = range ?? [NaN, NaN];
    if (range === null || low < 1024 || high < low + 10 || high > 64535) {
      throw new UsageError(
        `--ports ${values.ports}: must be LOW-HIGH, 1024 <= LOW, LOW + 10 <= HIGH <= 64535`,
      );
    }
    useBindPortRange(low, high);
  }
  const stamp = new Date().toISOString().replaceAll(":", "-").slice(0, 19);
  return {
    faults,
    cycles: values.cycles === undefined ? null : positiveInteger(values.cycles, "cycles", 100_000),
    sizes,
    clients: positiveInteger(values.clients, "clients", 32),
    minutes: positiveInteger(values.minutes, "minutes", 24 * 60),
    recoveryMs: values["recovery-minutes"] === undefined
      ? RECOVERY_MS_DEFAULT
      : positiveInteger(values["recovery-minutes"], "recovery-minutes", 24 * 60) * 60_000,
    json: values.json ?? `bench-results/chaos-${stamp}.json`,
    fuzz: values.fuzz,
    fuzzRuns: positiveInteger(values["fuzz-runs"], "fuzz-runs", 10_000_000),
    fuzzTarget: values["fuzz-target"] ?? null,
  };
}

/** Cycles completed so far (all faults) per minute since `startedMs`. */
let cyclesCompleted = 0;
function cyclesPerMinute(startedMs: number, cycles = cyclesCompleted): number {
  return cycles / Math.max(1e-9, (performance.now() - startedMs) / 60_000);
}

async function runChaos(options: Options): Promise<number> {
  const startedMs = performance.now();
  const endMs = startedMs + options.minutes * 60_000;
  const skipped: { fault: string; reason: string }[] = [];
  const runnable: Fault[] = [];
  for (const fault of options.faults) {
    const reason = fault.needs === null
      ? null
      : await unavailableReason(fault.needs === "nft" ? "nft" : "mount");
    if (reason === null) runnable.push(fault);
    else skipped.push({ fault: fault.name, reason });
  }
  for (const { fault, reason } of skipped) console.error(`skipping ${fault}: ${reason}`);
  const allFigures = runnable.map((fault) => emptyFigures(fault.profile, fault.name));
  // Interrupted, the run still leaves the figures of the cycles it completed.
  writePartialReport = () => writeReport(allFigures, { options, startedMs, skipped });
  // One cluster per profile and size runs all of the profile's faults in turn, each until
  // its count; a run ends early only on a real failure, and then a fresh cluster goes on
  // with the counts left.
  const plans: { size: number; entries: FaultEntry[] }[] = [];
  for (const profile of PROFILE_NAMES) {
    for (const size of options.sizes) {
      const entries = runnable.flatMap((fault, index) =>
        fault.profile !== profile ? [] : [{
          fault,
          figures: allFigures[index]!,
          cyclesLeft: options.cycles ?? Math.ceil(fault.defaultCycles / options.sizes.length),
        }]
      );
      if (entries.length > 0) plans.push({ size, entries });
    }
  }
  const cyclesLeft = (entries: readonly FaultEntry[]) =>
    entries.reduce((total, entry) => total + (entry.cyclesLeft ?? 0), 0);
  for (const [index, { size, entries }] of plans.entries()) {
    // Each run gets a share of the time left in proportion to its cycles.
    const wanted = cyclesLeft(entries);
    const wantedLater = plans.slice(index).reduce(
      (total, plan) => total + cyclesLeft(plan.entries),
      0,
    );
    const deadlineMs = performance.now() + (endMs - performance.now()) * wanted / wantedLater;
    const names = entries.map((entry) => entry.fault.name).join(", ");
    console.error(`${names}: ${size} nodes, up to ${wanted} cycles`);
    const first = entries[0]!.figures;
    for (
      let run = 0;
      run < RUNS_PER_SIZE_MAX && cyclesLeft(entries) > 0 && performance.now() < deadlineMs;
      run++
    ) {
      const errorsBefore = entries.reduce((total, entry) => total + entry.figures.errors, 0);
      let cyclesDone = 0;
      const outcome = await runFaults(entries, {
        size,
        cycles: cyclesLeft(entries),
        deadlineMs,
        clients: options.clients,
        recoveryMs: options.recoveryMs,
        onCycle: (figures) => {
          cyclesCompleted++;
          if (++cyclesDone % 10 === 0) {
            console.error(
              `  ${size} nodes: ${cyclesDone} cycles (${figures.fault}: ${figures.cycles}, ` +
                `${figures.violations} violations), ${Math.round(cyclesPerMinute(startedMs))}/min`,
            );
          }
        },
      });
      // A lost write or an error outside a cycle belongs to the run, not one fault: it is
      // counted on the profile's first fault, and its detail names the run's faults.
      first.lostAcknowledgedWrites += outcome.lostAcknowledgedWrites.length;
      for (const line of outcome.lostAcknowledgedWrites) {
        addDetail(first, `${size} nodes (${names}): lost acknowledged write ${line}`);
      }
      const errorsAfter = entries.reduce((total, entry) => total + entry.figures.errors, 0);
      if (outcome.error === INTERRUPTED) break;
      if (outcome.error !== null && errorsAfter === errorsBefore) {
        // Failed outside a cycle (forming the cluster, the read-back): count it here.
        first.errors++;
        addDetail(first, `${size} nodes (${names}): ${outcome.error}`);
      }
      if (outcome.error === null) break;
      console.error(
        `  ${size} nodes: run failed (${outcome.error.split("\n")[0]}); a fresh cluster`,
      );
    }
  }
  const report = await writeReport(allFigures, { options, startedMs, skipped });
  return report.violations + report.lostAcknowledgedWrites + report.errors === 0 ? 0 : 1;
}

/** Set while a chaos run is going on: writes what it has so far (for the signal handler). */
let writePartialReport: (() => Promise<unknown>) | null = null;

/** Prints the table and writes the JSON report of `figures`. */
async function writeReport(
  figures: FaultFigures[],
  run: { options: Options; startedMs: number; skipped: { fault: string; reason: string }[] },
): Promise<ReturnType<typeof buildReport>> {
  const report = buildReport(figures, {
    command: `deno task chaos ${Deno.args.join(" ")}`.trim(),
    durationSeconds: (performance.now() - run.startedMs) / 1000,
    skipped: run.skipped,
  });
  console.log(formatTable(report));
  for (const figures of report.faults) {
    for (const line of [...figures.details, ...figures.observations]) {
      console.log(`${figures.fault}: ${line}`);
    }
  }
  const path = run.options.json;
  const directory = path.includes("/") ? path.replace(/\/[^/]*$/, "") : ".";
  await Deno.mkdir(directory, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  console.log(
    `${report.cycles} cycles in ${(report.durationSeconds / 60).toFixed(1)} min: ` +
      `${cyclesPerMinute(run.startedMs, report.cycles).toFixed(2)} cycles per minute`,
  );
  console.log(`report written to ${path}`);
  return report;
}

async function runFuzz(options: Options): Promise<number> {
  const results = await runFuzzTargets({
    numRuns: options.fuzzRuns,
    ...(options.fuzzTarget === null ? {} : { only: options.fuzzTarget }),
  });
  for (const result of results) {
    console.log(
      `${result.target.padEnd(32)} ${String(result.runs).padStart(8)} cases  ` +
        `${result.failure === null ? "ok" : `FAILED: ${result.failure}`}  ${
          Math.round(result.durationMs)
        } ms`,
    );
  }
  return results.every((result) => result.failure === null) ? 0 : 1;
}

if (import.meta.main) {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`chaos: ${message}\n${USAGE}`);
    Deno.exit(2);
  }
  const onSignal = async () => {
    console.error(
      "chaos: interrupted; stopping the nodes and removing the nftables table and mounts",
    );
    await releaseOnSignal();
    await writePartialReport?.().catch((error) => console.error(`chaos: no report: ${error}`));
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 1;
  try {
    code = options.fuzz ? await runFuzz(options) : await runChaos(options);
  } finally {
    await releaseOnSignal();
  }
  Deno.exit(code);
}
