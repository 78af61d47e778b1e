import assert from "node:assert/strict";
import { startingStatusJson } from "../node/status/status_view.ts";
import { formatStatus } from "./cluster_command.ts";

Deno.test("formatStatus() says since when a node's disk is full, why, and the bytes free, and nothing while it has room", () => {
  const roomy = { ...startingStatusJson(2, null), role: "follower" as const, leader_id: 1 };
  const diskFull = {
    since: "2026-12-06T10:00:00.000Z",
    error: "database or disk is full",
    free_bytes: 8192,
  };
  assert.match(
    formatStatus({ ...roomy, disk_full: diskFull }),
    /^disk full since 2026-12-06T10:00:00\.000Z \(database or disk is full\), 8192 bytes free: the node refuses requests until space is freed in its data dir$/m,
  );
  assert.doesNotMatch(formatStatus(roomy), /disk full/);
});
