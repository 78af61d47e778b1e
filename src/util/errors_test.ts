import assert from "node:assert/strict";
import { HelpRequested, MESSAGE_CHARS_MAX, reasonOf, StartupError, UsageError } from "./errors.ts";

Deno.test("UsageError exits with 2 and StartupError with 1, HelpRequested with 0", () => {
  assert.equal(new UsageError("--id x: must be an integer ≥ 1").exitCode, 2);
  assert.equal(new StartupError("port in use").exitCode, 1);
  assert.equal(new HelpRequested("usage\ntext").exitCode, 0);
});

Deno.test("UsageError and StartupError keep their one-line message and name", () => {
  const usage = new UsageError("--bind x: bad");
  assert.equal(usage.message, "--bind x: bad");
  assert.equal(usage.name, "UsageError");
  const cause = new Error("os error 98");
  const startup = new StartupError("port in use", { cause });
  assert.equal(startup.name, "StartupError");
  assert.equal(startup.cause, cause);
});

Deno.test("UsageError and StartupError refuse a multi-line, empty or oversize message", () => {
  assert.throws(() => new UsageError("first\nsecond"), /one non-empty line/);
  assert.throws(() => new StartupError("first\rsecond"), /one non-empty line/);
  assert.throws(() => new UsageError(""), /one non-empty line/);
  assert.throws(() => new StartupError("x".repeat(MESSAGE_CHARS_MAX + 1)), /one non-empty line/);
});

Deno.test("HelpRequested carries the multi-line help text", () => {
  const help = new HelpRequested("line one\nline two");
  assert.equal(help.text, "line one\nline two");
});

Deno.test("reasonOf() folds an error's message onto one line", () => {
  assert.equal(
    reasonOf(new Error("Address in use\n  (os error 98)")),
    "Address in use (os error 98)",
  );
  assert.equal(reasonOf("plain text"), "plain text");
});
