/**
 * A full disk (found by `deno task chaos --profile disk`): a node whose data dir fills up
 * keeps running, refuses requests with one clear error naming itself, and once space is
 * freed serves again by itself, without a restart, with every acknowledged write. Needs
 * root and mount (tmpfs); skipped with a line saying why otherwise.
 */

import assert from "node:assert/strict";
import { BlixardClient, ClientError } from "../../src/client/client.ts";
import { CLUSTER_WAIT_MS, statusOf, waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { assertEveryWriteReadable } from "../helpers/writer.ts";
import { unavailableReason } from "./harness/system_command.ts";
import { TmpfsDisk } from "./harness/tmpfs_disk.ts";

const reason = await unavailableReason("mount");
if (reason !== null) console.warn(`disk_full_test: skipped: ${reason}`);

/** Room for the node's database, little to fill. */
const DISK_BYTES = 16 * 1024 * 1024;
/** Writes until one meets the full disk (the file may have a little room left). */
const WRITES_ON_FULL_DISK_MAX = 200;

Deno.test({
  name:
    "a node whose data dir fills up refuses writes with disk_full naming it, says so in /health, /status and /metrics, and once space is freed serves again without a restart, with every acknowledged write",
  ignore: reason !== null,
  fn: async () => {
    const disk = await TmpfsDisk.mount(DISK_BYTES);
    const group = new NodeGroup();
    let client: BlixardClient | null = null;
    try {
      const dataDir = `${disk.path}/node`;
      const node = await group.start({ id: 1, dataDir });
      await waitForVoters(node, 1);
      client = await BlixardClient.connect(node.address, { attemptTimeoutMs: 1_000 });
      const acknowledged = new Map<string, string>();
      for (let i = 0; i < 20; i++) {
        await client.put(`before/${i}`, `value ${i}`);
        acknowledged.set(`before/${i}`, `value ${i}`);
      }

      await disk.fill();
      let refusal: ClientError | null = null;
      for (let i = 0; i < WRITES_ON_FULL_DISK_MAX && refusal === null; i++) {
        const value = `${"x".repeat(1024)} ${i}`;
        try {
          await client.put(`full/${i}`, value, { timeoutMs: 2_000 });
          acknowledged.set(`full/${i}`, value);
        } catch (error) {
          // The write that met the full disk may still commit once there is room.
          if (error instanceof ClientError && error.code === "disk_full") refusal = error;
        }
      }
      assert.ok(refusal !== null, `no write was refused as disk_full\n${node.stderr}`);
      assert.match(refusal.message, /^disk full on node 1 \(database or disk is full\)/);
      await node.waitForLog(/the disk of .* is full/);
      assert.equal(node.exitStatus, null, "the node keeps running");
      await assertOperatorsSeeDiskFull(node);

      await disk.free();
      const deadlineMs = performance.now() + CLUSTER_WAIT_MS;
      for (;;) {
        try {
          await client.put("after", "space freed", { timeoutMs: 2_000 });
          break;
        } catch (error) {
          if (performance.now() > deadlineMs) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      await node.waitForLog(/has room again/);
      assert.equal(node.exitStatus, null, "served again without a restart");
      await assertOperatorsSeeRoom(node);
      await assertEveryWriteReadable(client, acknowledged);
      assert.doesNotMatch(node.stderr, /Uncaught/, "no stack trace");
    } finally {
      await client?.close();
      await group.cleanup();
      await disk.unmount();
    }
  },
});

/** One metric's value in `/metrics` (no labels). */
async function metricOf(node: NodeProcess, name: string): Promise<number> {
  const { text } = await node.getText("/metrics");
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** `/health` 503 `disk_full` (200 with `?exclude=disk_full`), `/status` and the metrics say so. */
async function assertOperatorsSeeDiskFull(node: NodeProcess): Promise<void> {
  const health = await node.getText("/health");
  assert.equal(health.status, 503, health.text);
  const body = JSON.parse(health.text);
  assert.equal(body.status, "disk_full");
  assert.match(body.disk_full.reason, /disk .* is full/);
  const excluded = await node.getText("/health?exclude=disk_full");
  assert.equal(excluded.status, 200, excluded.text);
  assert.equal(JSON.parse(excluded.text).disk_full.since, body.disk_full.since);

  const status = await statusOf(node);
  assert.ok(status.disk_full, `/status disk_full: ${JSON.stringify(status)}`);
  assert.equal(status.disk_full.since, body.disk_full.since);
  assert.ok(Date.parse(status.disk_full.since) <= Date.now(), status.disk_full.since);
  assert.match(status.disk_full.error, /database or disk is full/);
  // A few pages may be left; the fill leaves less than the database's next growth.
  assert.ok(
    status.disk_full.free_bytes !== null && status.disk_full.free_bytes < DISK_BYTES / 4,
    `free_bytes ${status.disk_full.free_bytes}`,
  );
  assert.equal(await metricOf(node, "blixard_disk_full"), 1);
  assert.ok(await metricOf(node, "blixard_disk_full_total") >= 1);
}

/** Once writes succeed again: `/health` 200, `/status` `disk_full` null, the gauge 0. */
async function assertOperatorsSeeRoom(node: NodeProcess): Promise<void> {
  const health = await node.getText("/health");
  assert.equal(health.status, 200, health.text);
  assert.deepEqual(JSON.parse(health.text), { status: "ok" });
  assert.equal((await statusOf(node)).disk_full, null);
  assert.equal(await metricOf(node, "blixard_disk_full"), 0);
  assert.ok(await metricOf(node, "blixard_disk_full_total") >= 1, "the count stays");
}
