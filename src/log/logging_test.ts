import assert from "node:assert/strict";
import { getLogger as getLogtapeLogger, type LogRecord } from "@logtape/logtape";
import {
  configureLogging,
  formatJsonRecord,
  formatTextRecord,
  getLogger,
  resetLogging,
} from "./logging.ts";

const TIMESTAMP_MS = Date.UTC(2026, 10, 29, 15, 38, 37, 123);

function record(overrides: Partial<LogRecord>): LogRecord {
  return {
    category: ["blixard", "node"],
    level: "info",
    message: ["ready"],
    rawMessage: "ready",
    timestamp: TIMESTAMP_MS,
    properties: {},
    ...overrides,
  };
}

async function captureLogs(
  options: { level: "trace" | "debug" | "info" | "warning" | "error"; format: "text" | "json" },
  body: () => void,
): Promise<string[]> {
  const lines: string[] = [];
  await configureLogging({ ...options, write: (line) => lines.push(line) });
  try {
    body();
  } finally {
    await resetLogging();
  }
  return lines;
}

Deno.test("formatTextRecord() renders one line with the area and key=value properties", () => {
  const line = formatTextRecord(record({ properties: { node_id: 1, http: "127.0.0.1:8001" } }));
  assert.equal(line, "2026-11-29T15:38:37.123Z INFO  node: ready node_id=1 http=127.0.0.1:8001\n");
});

Deno.test("formatTextRecord() does not repeat properties the message already shows", () => {
  const line = formatTextRecord(record({
    message: ["ready node_id=", 1, ""],
    rawMessage: "ready node_id={nodeId}",
    properties: { nodeId: 1, startMs: 80 },
  }));
  assert.equal(line, "2026-11-29T15:38:37.123Z INFO  node: ready node_id=1 startMs=80\n");
});

Deno.test("formatTextRecord() pads every level to five characters", () => {
  const labels = (["trace", "debug", "info", "warning", "error", "fatal"] as const).map((level) =>
    formatTextRecord(record({ level })).slice(25, 31)
  );
  assert.deepEqual(labels, ["TRACE ", "DEBUG ", "INFO  ", "WARN  ", "ERROR ", "FATAL "]);
});

Deno.test("formatTextRecord() quotes strings with spaces and escapes line breaks", () => {
  const line = formatTextRecord(record({
    message: ["peer ", "a\nb", " refused"],
    properties: {
      reason: "bad key",
      injected: "x\n2026-01-01T00:00:00.000Z INFO  forged",
      empty: "",
    },
  }));
  assert.equal(line.split("\n").length, 2, "exactly one line and the final newline");
  assert.match(line, /: peer a\\nb refused /);
  assert.match(line, / reason="bad key" /);
  assert.match(line, / injected="x\\n2026-01-01T00:00:00\.000Z INFO {2}forged" /);
  assert.match(line, / empty=""\n$/);
});

Deno.test("formatTextRecord() renders errors, objects, null and booleans compactly", () => {
  const line = formatTextRecord(record({
    properties: {
      error: new TypeError("no route"),
      members: [1, 2],
      leader: null,
      voter: true,
      size: 10n,
    },
  }));
  assert.match(
    line,
    / error="TypeError: no route" members=\[1,2\] leader=null voter=true size=10\n$/,
  );
});

Deno.test("formatTextRecord() keeps the full category outside the blixard root", () => {
  const line = formatTextRecord(record({ category: ["logtape", "meta"], level: "warning" }));
  assert.match(line, / WARN {2}logtape\.meta: ready\n$/);
});

Deno.test("formatJsonRecord() writes one JSON object with the five documented fields", () => {
  const line = formatJsonRecord(record({
    message: ["joined as node ", 3, ""],
    properties: { node_id: 3, cluster_id: null },
  }));
  assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    timestamp: "2026-11-29T15:38:37.123Z",
    level: "info",
    category: "blixard.node",
    message: "joined as node 3",
    properties: { node_id: 3, cluster_id: null },
  });
});

Deno.test("formatJsonRecord() serialises errors, bigints and cycles without throwing", () => {
  const cyclic: Record<string, unknown> = { name: "a" };
  cyclic.self = cyclic;
  const shared = { port: 1 };
  const parsed = JSON.parse(formatJsonRecord(record({
    properties: {
      error: new RangeError("too big"),
      index: 2n ** 64n,
      cyclic,
      left: shared,
      right: shared,
    },
  })));
  assert.equal(parsed.properties.error.name, "RangeError");
  assert.equal(parsed.properties.error.message, "too big");
  assert.equal(typeof parsed.properties.error.stack, "string");
  assert.equal(parsed.properties.index, "18446744073709551616");
  assert.deepEqual(parsed.properties.cyclic, { name: "a", self: "[circular]" });
  assert.deepEqual(parsed.properties.right, { port: 1 }, "a shared object is not a cycle");
});

Deno.test("configureLogging() sends text records at or above the level to the sink", async () => {
  const lines = await captureLogs({ level: "info", format: "text" }, () => {
    const logger = getLogger(["blixard", "node"]);
    logger.debug("hidden");
    logger.info("ready", { node_id: 1, http: "127.0.0.1:8001" });
    logger.warn("slow disk");
  });
  assert.equal(lines.length, 2);
  assert.match(
    lines[0] ?? "",
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}node: ready node_id=1 http=127\.0\.0\.1:8001\n$/,
  );
  assert.match(lines[1] ?? "", / WARN {2}node: slow disk\n$/);
});

Deno.test("configureLogging() with json writes one parseable object per record", async () => {
  const lines = await captureLogs({ level: "debug", format: "json" }, () => {
    getLogger(["blixard", "raft"]).debug("became leader", { term: 4 });
  });
  assert.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0] ?? "");
  assert.equal(parsed.level, "debug");
  assert.equal(parsed.category, "blixard.raft");
  assert.equal(parsed.message, "became leader");
  assert.deepEqual(parsed.properties, { term: 4 });
  assert.ok(!Number.isNaN(Date.parse(parsed.timestamp)));
});

Deno.test("loggers taken from @logtape/logtape directly reach the configured sink", async () => {
  const lines = await captureLogs({ level: "info", format: "text" }, () => {
    getLogtapeLogger(["blixard", "transport"]).error("connection lost", { peer: 2 });
  });
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? "", / ERROR transport: connection lost peer=2\n$/);
});

Deno.test("configureLogging() can be called again to change the level", async () => {
  const lines: string[] = [];
  const write = (line: string) => lines.push(line);
  await configureLogging({ level: "error", format: "text", write });
  getLogger(["blixard", "node"]).warning("dropped");
  await configureLogging({ level: "warning", format: "text", write });
  getLogger(["blixard", "node"]).warning("kept");
  await resetLogging();
  getLogger(["blixard", "node"]).error("after reset");
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? "", /kept/);
});

Deno.test("configureLogging() writes to stderr and leaves stdout empty", async () => {
  const loggingUrl = new URL("./logging.ts", import.meta.url).href;
  const code = `
    import { configureLogging, getLogger } from ${JSON.stringify(loggingUrl)};
    await configureLogging({ level: "info", format: "text" });
    getLogger(["blixard", "node"]).info("ready", { node_id: 7 });
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    cwd: new URL("../../", import.meta.url),
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  assert.equal(new TextDecoder().decode(output.stdout), "");
  assert.match(stderr, / INFO {2}node: ready node_id=7\n$/);
});
