/**
 * Storage benchmark: how fast `SqliteStorage` makes entries durable, what a Ready's
 * persist+apply transaction costs, and how long opening a 100k-entry database takes with
 * and without `PRAGMA quick_check`. Every figure is the median of several runs, with min
 * and max. Run: `npx deno run -A scripts/bench_storage.ts [--runs N] [--json]`.
 *
 * It writes only under a temp dir in /tmp, removed at the end.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Entry } from "../src/raft/types.ts";
import { SqliteStorage } from "../src/storage/sqlite_storage.ts";
import { encodeCommand } from "../src/state_machine/commands.ts";
import { KvStateMachine } from "../src/state_machine/kv_state_machine.ts";
import { SqliteStateStore } from "../src/state_machine/sqlite_state_store.ts";

/** One measured figure. */
interface Figure {
  name: string;
  unit: string;
  median: number;
  min: number;
  max: number;
}

const ENTRY_DATA_BYTES = 256;
const BATCH_SIZES = [1, 16, 256] as const;
/** Entries appended per run of one batch size: enough fsyncs to average out noise. */
const ENTRIES_PER_RUN: Record<number, number> = { 1: 200, 16: 3200, 256: 25_600 };
const PUTS_PER_READY = 64;
const READIES_PER_RUN = 50;
const LARGE_LOG_ENTRIES = 100_000;
const READ_ENTRIES = 256;

function summarize(name: string, unit: string, samples: number[]): Figure {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { name, unit, median, min: sorted[0]!, max: sorted.at(-1)! };
}

function normalEntries(first: number, count: number, data: Uint8Array): Entry[] {
  return Array.from(
    { length: count },
    (_, i) => ({ type: "normal" as const, term: 1, index: first + i, data }),
  );
}

/** Entries per second appended to a fresh database, one persist (one fsync) per batch. */
function appendRate(dataDir: string, batchSize: number): number {
  const storage = SqliteStorage.open(dataDir);
  const data = new Uint8Array(ENTRY_DATA_BYTES).fill(7);
  const total = ENTRIES_PER_RUN[batchSize]!;
  const started = performance.now();
  for (let first = 1; first <= total; first += batchSize) {
    storage.persist({
      hardState: { term: 1, vote: 1, commit: first - 1 },
      entries: normalEntries(first, batchSize, data),
      snapshot: null,
    });
  }
  const seconds = (performance.now() - started) / 1000;
  storage.close();
  return total / seconds;
}

/**
 * Milliseconds per Ready that persists 64 put entries and, with `apply`, applies them to
 * the state machine in the same transaction (one fsync either way).
 */
function readyCost(dataDir: string, apply: boolean): number {
  const storage = SqliteStorage.open(dataDir);
  const machine = new KvStateMachine(new SqliteStateStore(storage));
  const value = new Uint8Array(ENTRY_DATA_BYTES - 32).fill(3);
  let index = 0;
  const started = performance.now();
  for (let ready = 0; ready < READIES_PER_RUN; ready += 1) {
    const entries: Entry[] = Array.from({ length: PUTS_PER_READY }, () => {
      index += 1;
      const key = new TextEncoder().encode(`key-${index % 1000}`);
      return { type: "normal", term: 1, index, data: encodeCommand({ type: "put", key, value }) };
    });
    storage.transaction(() => {
      storage.persist({ hardState: { term: 1, vote: 1, commit: index }, entries, snapshot: null });
      if (apply) { for (const entry of entries) machine.apply(entry); }
    });
  }
  const milliseconds = (performance.now() - started) / READIES_PER_RUN;
  storage.close();
  return milliseconds;
}

/** Writes a 100k-entry log once; returns the data dir. */
function writeLargeLog(root: string): string {
  const dataDir = `${root}/large`;
  const storage = SqliteStorage.open(dataDir);
  const data = new Uint8Array(ENTRY_DATA_BYTES).fill(5);
  storage.transaction(() => {
    for (let first = 1; first <= LARGE_LOG_ENTRIES; first += 1000) {
      storage.persist({
        hardState: { term: 1, vote: 1, commit: first - 1 },
        entries: normalEntries(first, 1000, data),
        snapshot: null,
      });
    }
  });
  storage.close();
  return dataDir;
}

/** Microseconds per `entries()` call reading 256 consecutive entries from the large log. */
function readMicroseconds(dataDir: string): number {
  const storage = SqliteStorage.open(dataDir, { quickCheck: false });
  const calls = 200;
  const started = performance.now();
  for (let call = 0; call < calls; call += 1) {
    const low = 1 + ((call * 997) % (LARGE_LOG_ENTRIES - READ_ENTRIES));
    storage.entries(low, low + READ_ENTRIES, Infinity);
  }
  const microseconds = ((performance.now() - started) * 1000) / calls;
  storage.close();
  return microseconds;
}

function openMs(dataDir: string, quickCheck: boolean): number {
  const started = performance.now();
  const storage = SqliteStorage.open(dataDir, { quickCheck });
  const milliseconds = performance.now() - started;
  storage.close();
  return milliseconds;
}

function measure(root: string, runs: number): Figure[] {
  const figures: Figure[] = [];
  let run = 0;
  const freshDir = () => `${root}/run-${run++}`;
  for (const batchSize of BATCH_SIZES) {
    const samples = Array.from({ length: runs }, () => appendRate(freshDir(), batchSize));
    figures.push(
      summarize(
        `append, ${batchSize} x ${ENTRY_DATA_BYTES} B entries per fsync`,
        "entries/s",
        samples,
      ),
    );
  }
  for (const apply of [false, true]) {
    const samples = Array.from({ length: runs }, () => readyCost(freshDir(), apply));
    const what = apply ? "persist + apply" : "persist only";
    figures.push(
      summarize(`${what} of ${PUTS_PER_READY} puts, one transaction`, "ms/Ready", samples),
    );
  }
  const large = writeLargeLog(root);
  const size = Deno.statSync(`${large}/blixard.db`).size;
  const readSamples = Array.from({ length: runs }, () => readMicroseconds(large));
  figures.push(
    summarize(
      `entries() of ${READ_ENTRIES} x ${ENTRY_DATA_BYTES} B from the large log`,
      "µs/call",
      readSamples,
    ),
  );
  for (const quickCheck of [false, true]) {
    const samples = Array.from({ length: runs }, () => openMs(large, quickCheck));
    const label = quickCheck ? "with" : "without";
    figures.push(
      summarize(
        `open ${LARGE_LOG_ENTRIES} entries (${(size / 1e6).toFixed(1)} MB) ${label} quick_check`,
        "ms",
        samples,
      ),
    );
  }
  return figures;
}

function printTable(figures: Figure[]): void {
  const format = (value: number) => value >= 100 ? value.toFixed(0) : value.toPrecision(3);
  const width = Math.max(...figures.map((f) => f.name.length));
  console.log(
    `${"measure".padEnd(width)}  ${"median".padStart(9)}  ${"min".padStart(9)}  ${
      "max".padStart(9)
    }  unit`,
  );
  for (const f of figures) {
    console.log(
      `${f.name.padEnd(width)}  ${format(f.median).padStart(9)}  ${format(f.min).padStart(9)}  ${
        format(f.max).padStart(9)
      }  ${f.unit}`,
    );
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { runs: { type: "string", default: "5" }, json: { type: "boolean", default: false } },
  });
  const runs = Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1 || runs > 100) {
    console.error(`--runs ${values.runs}: must be an integer from 1 to 100`);
    Deno.exit(2);
  }
  const root = Deno.makeTempDirSync({ dir: "/tmp", prefix: "blixard-bench-storage-" });
  try {
    const figures = measure(root, runs);
    printTable(figures);
    if (values.json) console.log(JSON.stringify({ runs, figures }));
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
}
