/**
 * Process-wide logging on `@logtape/logtape`: one sink on stderr (stdout stays for command
 * output), a readable one-line text format or JSON lines, and the level the operator chose.
 *
 * Code logs through `getLogger(["blixard", area])`, re-exported here; importing `getLogger`
 * from `@logtape/logtape` directly is the same function and works as well.
 *
 * Text:  `2026-11-29T15:38:37.123Z INFO  node: ready node_id=1 http=127.0.0.1:8001`
 * JSON:  `{"timestamp":"…","level":"info","category":"blixard.node","message":"ready",`
 *         `"properties":{"node_id":1}}`
 *
 * @module
 */

import { configure, type LogRecord, reset, type Sink } from "@logtape/logtape";

export { getLogger } from "@logtape/logtape";

/** The levels an operator may choose with `--log-level`, most verbose first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error"] as const;
/** A level accepted by `--log-level`. */
export type LogLevelName = typeof LOG_LEVELS[number];

/** The formats accepted by `--log-format`. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A format accepted by `--log-format`. */
export type LogFormat = typeof LOG_FORMATS[number];

/** The root category of every Blixard logger; the text format leaves it out. */
export const ROOT_CATEGORY = "blixard";

/** Options of {@linkcode configureLogging}. */
export interface LoggingOptions {
  /** Records below this level are dropped. */
  level: LogLevelName;
  /** How each record is rendered. */
  format: LogFormat;
  /**
   * Where each rendered line (ending in `\n`) goes. Defaults to a synchronous write to
   * stderr, so that the last lines before a fatal exit are never lost in a buffer.
   */
  write?: (line: string) => void;
}

/**
 * Configures the loggers of the whole process, replacing any earlier configuration.
 * LogTape's own diagnostics (category `["logtape", "meta"]`) go to the same sink from
 * `warning` up, which also silences its "loggers are configured" notice.
 */
export async function configureLogging(options: LoggingOptions): Promise<void> {
  const formatter = options.format === "json" ? formatJsonRecord : formatTextRecord;
  const write = options.write ?? writeStderr;
  const sink: Sink = (record) => write(formatter(record));
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: [ROOT_CATEGORY], sinks: ["main"], lowestLevel: options.level },
      { category: ["logtape", "meta"], sinks: ["main"], lowestLevel: "warning" },
    ],
  });
}

/** Removes the configuration made by {@linkcode configureLogging}: loggers go silent. */
export async function resetLogging(): Promise<void> {
  await reset();
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  const bytes = encoder.encode(line);
  let written = 0;
  while (written < bytes.length) {
    written += Deno.stderr.writeSync(bytes.subarray(written));
  }
}

const TEXT_LEVEL_LABELS: Record<LogRecord["level"], string> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO ",
  warning: "WARN ",
  error: "ERROR",
  fatal: "FATAL",
};

/**
 * Renders a record as one line: timestamp, level, category without the `blixard` root,
 * the message, then every property the message does not already show as `key=value`.
 * Strings with spaces, quotes or control characters are quoted as JSON strings, so that a
 * value can never start a forged line.
 */
export function formatTextRecord(record: LogRecord): string {
  const timestamp = new Date(record.timestamp).toISOString();
  const category = record.category[0] === ROOT_CATEGORY
    ? record.category.slice(1).join(".")
    : record.category.join(".");
  const message = escapeControlCharacters(renderMessage(record.message));
  let line = `${timestamp} ${TEXT_LEVEL_LABELS[record.level]} ${category}: ${message}`;
  const shown = placeholdersOf(record.rawMessage);
  for (const [key, value] of Object.entries(record.properties)) {
    if (shown.has(key)) continue;
    line += ` ${key}=${renderTextValue(value)}`;
  }
  return line + "\n";
}

/**
 * Renders a record as one JSON object on one line with the fields `timestamp` (ISO 8601,
 * UTC), `level`, `category` (joined with dots), `message` (with its values substituted)
 * and `properties`. Errors keep their name, message and stack; bigints become strings.
 */
export function formatJsonRecord(record: LogRecord): string {
  return stringifySafely({
    timestamp: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.join("."),
    message: renderMessage(record.message),
    properties: record.properties,
  }) + "\n";
}

/** The property names a message template substitutes, like `nodeId` in `"ready {nodeId}"`. */
function placeholdersOf(rawMessage: LogRecord["rawMessage"]): Set<string> {
  if (typeof rawMessage !== "string") return new Set();
  return new Set(Array.from(rawMessage.matchAll(/\{([^{}\s]+)\}/g), (match) => match[1]!));
}

/** LogTape's `message` alternates template text (even indices) and substituted values. */
function renderMessage(parts: readonly unknown[]): string {
  let message = "";
  for (let index = 0; index < parts.length; index += 1) {
    const part = parts[index];
    message += index % 2 === 0 ? String(part) : renderBareValue(part);
  }
  return message;
}

function renderBareValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (value === null || typeof value !== "object") return String(value);
  return stringifySafely(value);
}

const BARE_TEXT_VALUE = /^[^\s"'=\\\p{Cc}]+$/u;

function renderTextValue(value: unknown): string {
  const rendered = renderBareValue(value);
  if (typeof value === "string" || value instanceof Error) {
    return BARE_TEXT_VALUE.test(rendered) ? rendered : JSON.stringify(rendered);
  }
  return escapeControlCharacters(rendered);
}

function escapeControlCharacters(text: string): string {
  return text.replace(/\p{Cc}/gu, (character) => {
    const escaped = JSON.stringify(character).slice(1, -1);
    return escaped.length > 1
      ? escaped
      : `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** `JSON.stringify` that never throws: errors, bigints and cycles get a readable form. */
function stringifySafely(value: unknown): string {
  // The objects on the path from the root to the value being replaced: a value that is
  // its own ancestor closes a cycle. Shared but acyclic references are rendered each time.
  const ancestors: object[] = [];
  return JSON.stringify(value, function (this: unknown, _key: string, item: unknown) {
    if (typeof item === "bigint") return item.toString();
    if (item === null || typeof item !== "object") return item;
    while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
    if (ancestors.includes(item)) return "[circular]";
    const replaced = item instanceof Error
      ? { name: item.name, message: item.message, stack: item.stack ?? null }
      : item;
    ancestors.push(replaced);
    return replaced;
  }) ?? "null";
}
