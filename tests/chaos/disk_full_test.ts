/**
 * A full disk (found by `deno task chaos --profile disk`): a node whose data dir fills up
 * stops with one line naming the data dir and what to do, instead of an uncaught stack
 * trace; once space is freed it starts again with every acknowledged write. Needs root
 * and mount (tmpfs); skipped with a line saying why otherwise.
 */

import assert from "node:assert/strict";
import { BlixardClient } from "../../src/client/client.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup } from "../helpers/node_process.ts";
import { assertEveryWriteReadable } from "../helpers/writer.ts";
import { unavailableReason } from "./harness/system_command.ts";
import { TmpfsDisk } from "./harness/tmpfs_disk.ts";

const reason = await unavailableReason("mount");
if (reason !== null) console.warn(`disk_full_test: skipped: ${reason}`);

/** Room for the node's database, little to fill. */
const DISK_BYTES = 16 * 1024 * 1024;
/** Writes that may each fail once the disk is full, before the node has stopped. */
const WRITES_ON_FULL_DISK_MAX = 200;

Deno.test({
  name:
    "a node whose data dir fills up stops with one line naming it, and after space is freed starts again with every acknowledged write",
  ignore: reason !== null,
  fn: async () => {
    const disk = await TmpfsDisk.mount(DISK_BYTES);
    const group = new NodeGroup();
    const clients: BlixardClient[] = [];
    try {
      const dataDir = `${disk.path}/node`;
      const node = await group.start({ id: 1, dataDir });
      await waitForVoters(node, 1);
      const client = await BlixardClient.connect(node.address, { attemptTimeoutMs: 1_000 });
      clients.push(client);
      const acknowledged = new Map<string, string>();
      for (let i = 0; i < 20; i++) {
        await client.put(`before/${i}`, `value ${i}`);
        acknowledged.set(`before/${i}`, `value ${i}`);
      }

      await disk.fill();
      for (let i = 0; i < WRITES_ON_FULL_DISK_MAX && node.exitStatus === null; i++) {
        const value = `${"x".repeat(1024)} ${i}`;
        try {
          await client.put(`full/${i}`, value, { timeoutMs: 1_000 });
          acknowledged.set(`full/${i}`, value);
        } catch {
          // Refused or unanswered: the node is stopping.
        }
      }
      const status = await node.waitForExit();
      assert.equal(status.code, 1, node.stderr);
      const fatal = node.logRecords().filter((record) => record.level === "fatal");
      assert.equal(fatal.length, 1, node.stderr);
      assert.match(
        String(fatal[0]!.message),
        new RegExp(
          `^the disk of --data-dir ${dataDir} is full \\(.+\\): the node stops; free space there and start it again`,
        ),
      );
      assert.doesNotMatch(node.stderr, /Uncaught/, "no stack trace");

      await disk.free();
      const restarted = await group.start({ id: 1, bindPort: node.bindPort, dataDir });
      await waitForVoters(restarted, 1);
      // A new client, as after any restart of a whole cluster (see durability_test.ts).
      const fresh = await BlixardClient.connect(restarted.address);
      clients.push(fresh);
      await assertEveryWriteReadable(fresh, acknowledged);
      await fresh.put("after", "space freed");
    } finally {
      for (const client of clients) await client.close();
      await group.cleanup();
      await disk.unmount();
    }
  },
});
