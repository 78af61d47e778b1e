import assert from "node:assert/strict";
import type { StatusJson } from "../transport/cluster_rpcs.ts";
import { formatStatus } from "./cluster_command.ts";

const FOLLOWER: StatusJson = {
  node_id: 2,
  cluster_id: "c-1",
  role: "follower",
  term: 2,
  leader_id: 1,
  commit_index: 40,
  applied_index: 40,
  members: [],
  join: null,
  joins: [],
  learner_reason: null,
  paths: [],
  disk_full: null,
};

Deno.test("formatStatus() says since when a node's disk is full, why, and the bytes free, and nothing while it has room", () => {
  const shown = formatStatus({
    ...FOLLOWER,
    disk_full: {
      since: "2026-12-06T10:00:00.000Z",
      error: "database or disk is full",
      free_bytes: 8192,
    },
  });
  assert.match(
    shown,
    /^disk full since 2026-12-06T10:00:00\.000Z \(database or disk is full\), 8192 bytes free: the node refuses requests until space is freed in its data dir$/m,
  );
  assert.doesNotMatch(formatStatus(FOLLOWER), /disk full/);
});
