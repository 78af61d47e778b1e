/**
 * A `RaftNode` whose disk fills: SQLite itself answers `SQLITE_FULL` once the database file
 * may not grow (`PRAGMA max_page_count` at its current size), as it does when the disk has
 * no room. The node must refuse requests with `disk_full`, lose no acknowledged write, and
 * go on by itself once there is room, without a restart.
 */

import assert from "node:assert/strict";
import type { DatabaseSync } from "node:sqlite";
import { encodeCommand } from "../../state_machine/commands.ts";
import { eventually } from "../../transport/testing.ts";
import { ClusterError } from "./cluster_error.ts";
import { InProcessCluster, type TestMember } from "../testing/in_process_cluster.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function put(key: string, value: string): Uint8Array {
  return encodeCommand({ type: "put", key: encoder.encode(key), value: encoder.encode(value) });
}

function valueAt(member: TestMember, key: string): string | null {
  const value = member.stateMachine.get(encoder.encode(key));
  return value === null ? null : decoder.decode(value);
}

/** Lets the database file grow by no page more: the next write that needs one fails. */
function fill(database: DatabaseSync): void {
  const { page_count } = database.prepare("PRAGMA page_count").get() as { page_count: number };
  database.exec(`PRAGMA max_page_count = ${page_count}`);
}

/** Room again: SQLite's own upper bound. */
function free(database: DatabaseSync): void {
  database.exec("PRAGMA max_page_count = 4294967294");
}

/** A value that needs many new pages (a page is 4 KiB). */
const BIG_VALUE = "x".repeat(256 * 1024);

Deno.test("RaftNode on a full disk refuses requests with disk_full naming it, loses no acknowledged write, and serves again once there is room, without a restart", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const full = await cluster.leader();
    const acknowledged = new Map<string, string>();
    for (let i = 0; i < 5; i++) {
      await full.raft.propose(put(`before/${i}`, `value ${i}`));
      acknowledged.set(`before/${i}`, `value ${i}`);
    }

    fill(full.storage.database);
    // Its outcome is unknown until the disk has room: the entry left before the persist.
    const caughtInTheFull = full.raft.propose(put("big", BIG_VALUE)).then(
      () => "applied",
      (error) => error instanceof ClusterError ? error.code : String(error),
    );
    await eventually("the node meets the full disk", () => full.raft.diskFull !== null);
    for (const refused of [full.raft.propose(put("refused", "v")), full.raft.read(() => 1)]) {
      await assert.rejects(
        refused,
        (error) =>
          error instanceof ClusterError && error.code === "disk_full" &&
          new RegExp(`^disk full on node ${full.nodeId} \\(database or disk is full\\)`).test(
            error.message,
          ),
      );
    }
    assert.throws(() => full.raft.campaign(), /disk full on node/);

    // The others elect a leader among themselves and take writes meanwhile.
    const others = [...cluster.members.values()].filter((member) => member !== full);
    let leader: TestMember | undefined;
    await eventually("another node leads", () => {
      leader = others.find((member) => member.raft.softState.role === "leader");
      return leader !== undefined;
    });
    await leader!.raft.propose(put("during", "the full disk"));
    acknowledged.set("during", "the full disk");
    assert.notEqual(full.raft.diskFull, null, "no room yet: still refusing");

    free(full.storage.database);
    await eventually("the node goes on by itself", () => full.raft.diskFull === null);
    assert.match(await caughtInTheFull, /^(applied|dropped|timeout)$/);
    await eventually(
      "it has every acknowledged write",
      () => [...acknowledged].every(([key, value]) => valueAt(full, key) === value),
    );
    // Serving again: a linearizable read through it, and a write through the leader.
    assert.equal(await full.raft.read(() => valueAt(full, "during")), "the full disk");
    const current = await cluster.leader();
    await current.raft.propose(put("after", "room again"));
    await eventually("it applies new writes", () => valueAt(full, "after") === "room again");
  } finally {
    await cluster.close();
  }
});
