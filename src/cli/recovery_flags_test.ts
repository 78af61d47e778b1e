import assert from "node:assert/strict";
import { UsageError } from "../util/errors.ts";
import { parseNodeConfig } from "./node_config.ts";
import { MAIN_USAGE, NODE_USAGE } from "./usage.ts";

function usageError(args: string[], environment: Record<string, string> = {}): string {
  try {
    parseNodeConfig(args, environment);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${String(error)}`);
    assert.ok(!error.message.includes("\n"), "one line");
    return error.message;
  }
  assert.fail(`${args.join(" ")} was accepted`);
}

Deno.test("parseNodeConfig() reads --restore FILE and --force-new-cluster", () => {
  const restore = parseNodeConfig(["--id", "1", "--restore", "/backups/b.bak"], {});
  assert.equal(restore.restoreFile, "/backups/b.bak");
  assert.equal(restore.forceNewCluster, false);
  const force = parseNodeConfig(["--id", "1", "--force-new-cluster"], {});
  assert.equal(force.forceNewCluster, true);
  assert.equal(force.restoreFile, null);
});

Deno.test("--force-new-cluster is refused unless spelled out, and never read from the environment", () => {
  for (const abbreviation of ["--force", "--force-new", "--force-new-clusters"]) {
    assert.match(usageError(["--id", "1", abbreviation]), /unknown flag/);
  }
  const config = parseNodeConfig(["--id", "1"], {
    BLIXARD_FORCE_NEW_CLUSTER: "true",
    BLIXARD_RESTORE: "/b.bak",
  });
  assert.equal(config.forceNewCluster, false);
  assert.equal(config.restoreFile, null);
});

Deno.test("--restore and --force-new-cluster go neither together nor with --peers", () => {
  assert.match(
    usageError(["--id", "1", "--restore", "b.bak", "--force-new-cluster"]),
    /^--restore and --force-new-cluster: give one/,
  );
  assert.match(
    usageError(["--id", "1", "--restore", "b.bak", "--peers", "127.0.0.1:7001"]),
    /^--restore and --peers: .*drop --peers/,
  );
  assert.match(
    usageError(["--id", "1", "--force-new-cluster", "--peers", "127.0.0.1:7001"]),
    /^--force-new-cluster and --peers: /,
  );
  assert.match(usageError(["--id", "1", "--restore", ""]), /^--restore "": needs a backup file/);
});

Deno.test("the help texts describe --restore, --force-new-cluster and cluster backup", () => {
  for (const text of ["--restore FILE", "--force-new-cluster"]) {
    assert.ok(NODE_USAGE.includes(text), text);
    assert.ok(MAIN_USAGE.includes(text), text);
  }
  assert.ok(MAIN_USAGE.includes("cluster backup"));
});
