/**
 * The figures of a chaos run, per fault, and how they are shown: one table for people and
 * one JSON document for machines (and for `docs/reliability.md`).
 *
 * @module
 */

/** Violations and errors kept in full per fault; the counts stay exact beyond them. */
const DETAILS_MAX = 20;

/** What one fault did to the cluster, over all its cycles and runs. */
export interface FaultFigures {
  /** The fault, e.g. `crash-leader`. */
  fault: string;
  /** The profile it belongs to, e.g. `crashes`. */
  profile: string;
  /** Cluster sizes it ran on. */
  nodes: number[];
  /** Clusters formed for it. */
  runs: number;
  /** Fault cycles completed (injected, repaired, history checked). */
  cycles: number;
  /** Operations whose history was checked for linearizability. */
  operationsChecked: number;
  /** Operations answered, failed without effect, and of unknown outcome. */
  ok: number;
  fail: number;
  unknown: number;
  /** Cycles whose history is not linearizable. */
  violations: number;
  /** Cycles the checker could not decide within its budget. */
  undecided: number;
  /** Acknowledged writes (of the run's unique-key writer) not read back at the end. */
  lostAcknowledgedWrites: number;
  /** Per cycle: the longest time without an acknowledged write after the fault struck. */
  unavailabilityMs: number[];
  /** Cycles or runs that could not complete (the cluster did not recover in time, …). */
  errors: number;
  /** The first violations, lost writes and errors, in full. */
  details: string[];
  /** Things seen that are not failures of the product, e.g. how a node met a full disk. */
  observations: string[];
  /** What a measuring writer saw while the fault held (the floods), summed over cycles. */
  writer?: WriterSample;
}

/** A measuring writer's acknowledged writes over some time. */
export interface WriterSample {
  seconds: number;
  /** Latency of each acknowledged write, ms. */
  latenciesMs: number[];
  failed: number;
}

/** Adds one phase of a measuring writer to `figures`. */
export function addWriterSample(figures: FaultFigures, sample: WriterSample): void {
  const writer = figures.writer ??= { seconds: 0, latenciesMs: [], failed: 0 };
  writer.seconds += sample.seconds;
  writer.latenciesMs.push(...sample.latenciesMs);
  writer.failed += sample.failed;
}

/** A writer sample as the report shows it. */
export interface WriterSummary {
  seconds: number;
  writes: number;
  writesPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  failed: number;
}

function summarize(writer: WriterSample): WriterSummary {
  return {
    seconds: Math.round(writer.seconds),
    writes: writer.latenciesMs.length,
    writesPerSecond: Math.round(writer.latenciesMs.length / Math.max(writer.seconds, 1e-3)),
    p50Ms: rounded(quantile(writer.latenciesMs, 0.5)),
    p99Ms: rounded(quantile(writer.latenciesMs, 0.99)),
    failed: writer.failed,
  };
}

/** A new, empty set of figures. */
export function emptyFigures(profile: string, fault: string): FaultFigures {
  return {
    fault,
    profile,
    nodes: [],
    runs: 0,
    cycles: 0,
    operationsChecked: 0,
    ok: 0,
    fail: 0,
    unknown: 0,
    violations: 0,
    undecided: 0,
    lostAcknowledgedWrites: 0,
    unavailabilityMs: [],
    errors: 0,
    details: [],
    observations: [],
  };
}

/** Adds one line to `details` (up to a bound). */
export function addDetail(figures: FaultFigures, text: string): void {
  if (figures.details.length < DETAILS_MAX) figures.details.push(text);
}

/** Adds one line to `observations`, once per distinct text (up to a bound). */
export function addObservation(figures: FaultFigures, text: string): void {
  if (figures.observations.length < DETAILS_MAX && !figures.observations.includes(text)) {
    figures.observations.push(text);
  }
}

/** The `fraction` quantile (nearest rank) of `values`, or `null` when empty. */
export function quantile(values: readonly number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * The longest stretch in [`fromMs`, `toMs`] without an acknowledgement in `ackTimesMs`:
 * how long the clients saw no write succeed after a fault struck.
 */
export function longestGapMs(ackTimesMs: readonly number[], fromMs: number, toMs: number): number {
  let previous = fromMs;
  let longest = 0;
  for (const time of [...ackTimesMs].sort((a, b) => a - b)) {
    if (time < fromMs || time > toMs) continue;
    longest = Math.max(longest, time - previous);
    previous = time;
  }
  return Math.max(longest, toMs - previous);
}

/** The whole run's document. */
export interface ChaosReport {
  date: string;
  machine: string;
  command: string;
  durationSeconds: number;
  runs: number;
  cycles: number;
  operationsChecked: number;
  violations: number;
  lostAcknowledgedWrites: number;
  errors: number;
  /** Faults that could not run here, with the reason. */
  skipped: { fault: string; reason: string }[];
  faults: (Omit<FaultFigures, "unavailabilityMs" | "writer"> & {
    unavailabilityMs: { p50: number | null; p99: number | null; max: number | null };
    writer?: WriterSummary;
  })[];
}

/** Sums `faults` into the report document. */
export function buildReport(
  faults: readonly FaultFigures[],
  context: {
    command: string;
    durationSeconds: number;
    skipped: { fault: string; reason: string }[];
  },
): ChaosReport {
  const sum = (pick: (figures: FaultFigures) => number) =>
    faults.reduce((total, figures) => total + pick(figures), 0);
  return {
    date: new Date().toISOString(),
    machine: machineDescription(),
    command: context.command,
    durationSeconds: Math.round(context.durationSeconds),
    runs: sum((figures) => figures.runs),
    cycles: sum((figures) => figures.cycles),
    operationsChecked: sum((figures) => figures.operationsChecked),
    violations: sum((figures) => figures.violations),
    lostAcknowledgedWrites: sum((figures) => figures.lostAcknowledgedWrites),
    errors: sum((figures) => figures.errors),
    skipped: context.skipped,
    faults: faults.map(({ writer, ...figures }) => ({
      ...figures,
      unavailabilityMs: {
        p50: rounded(quantile(figures.unavailabilityMs, 0.5)),
        p99: rounded(quantile(figures.unavailabilityMs, 0.99)),
        max: rounded(quantile(figures.unavailabilityMs, 1)),
      },
      ...(writer === undefined ? {} : { writer: summarize(writer) }),
    })),
  };
}

/** The report as one table, one row per fault, and a totals line. */
export function formatTable(report: ChaosReport): string {
  const header = [
    "fault",
    "nodes",
    "runs",
    "cycles",
    "ops checked",
    "ok/fail/unknown",
    "violations",
    "lost acks",
    "unavail p50/p99/max ms",
    "errors",
  ];
  const rows = report.faults.map((figures) => [
    figures.fault,
    figures.nodes.join(","),
    String(figures.runs),
    String(figures.cycles),
    String(figures.operationsChecked),
    `${figures.ok}/${figures.fail}/${figures.unknown}`,
    String(
      figures.violations + figures.undecided > 0
        ? `${figures.violations} (+${figures.undecided} undecided)`
        : figures.violations,
    ),
    String(figures.lostAcknowledgedWrites),
    [figures.unavailabilityMs.p50, figures.unavailabilityMs.p99, figures.unavailabilityMs.max]
      .map((value) => value === null ? "-" : String(value)).join("/"),
    String(figures.errors),
  ]);
  const lines = aligned(header, rows);
  lines.push(
    `total: ${report.runs} runs, ${report.cycles} cycles, ${report.operationsChecked} operations ` +
      `checked, ${report.violations} violations, ${report.lostAcknowledgedWrites} lost ` +
      `acknowledged writes, ${report.errors} errors, ${report.durationSeconds} s`,
  );
  for (const { fault, reason } of report.skipped) lines.push(`skipped ${fault}: ${reason}`);
  const measured = report.faults.filter((figures) => figures.writer !== undefined);
  if (measured.length > 0) lines.push("", ...writerTable(measured));
  return lines.join("\n");
}

/** The fault whose writer figures the others are compared with. */
export const QUIET_FAULT = "flood-quiet";

/** The measuring writer's figures per fault, against the quiet run's when there is one. */
function writerTable(faults: ChaosReport["faults"]): string[] {
  const quiet = faults.find((figures) => figures.fault === QUIET_FAULT)?.writer;
  const versus = (value: number | null, base: number | null | undefined) =>
    value === null || base === null || base === undefined || base === 0
      ? "-"
      : `${(value / base).toFixed(2)}x`;
  const header = [
    "writer during",
    "writes",
    "writes/s",
    "p50 ms",
    "p99 ms",
    "failed",
    "writes/s vs quiet",
    "p99 vs quiet",
  ];
  const rows = faults.map(({ fault, writer }) => [
    fault,
    String(writer!.writes),
    String(writer!.writesPerSecond),
    String(writer!.p50Ms ?? "-"),
    String(writer!.p99Ms ?? "-"),
    String(writer!.failed),
    versus(writer!.writesPerSecond, quiet?.writesPerSecond),
    versus(writer!.p99Ms, quiet?.p99Ms),
  ]);
  return aligned(header, rows);
}

/** `header` and `rows` as lines of columns padded to one width each. */
function aligned(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length))
  );
  const line = (cells: string[]) =>
    cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd();
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)];
}

function rounded(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}

function machineDescription(): string {
  let cpu = "unknown CPU";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = /model name\s*:\s*(.+)/.exec(info)?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: the OS line below still says what it is.
  }
  const cores = navigator.hardwareConcurrency;
  const load = Deno.loadavg().map((value) => value.toFixed(2)).join(" ");
  return `${Deno.build.os} ${Deno.osRelease()}, ${cores} cores (${cpu}), ` +
    `${Math.round(Deno.systemMemoryInfo().total / 2 ** 30)} GiB, load ${load} at the end`;
}
