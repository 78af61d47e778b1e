import assert from "node:assert/strict";
import type { StatusJson } from "../transport/cluster_rpcs.ts";
import { formatStatus } from "./cluster_command.ts";

const LEARNER: StatusJson = {
  node_id: 6,
  cluster_id: "c-1",
  role: "learner",
  term: 2,
  leader_id: 1,
  commit_index: 40,
  applied_index: 40,
  members: [],
  join: null,
  joins: [],
  learner_reason: "voter cap 5 reached (--max-voters)",
};

Deno.test("formatStatus() says why a learner is one, on the learner and per join on the leader", () => {
  assert.match(formatStatus(LEARNER), /^learner: voter cap 5 reached \(--max-voters\)$/m);
  const leader = formatStatus({
    ...LEARNER,
    node_id: 1,
    role: "leader",
    learner_reason: null,
    joins: [{
      node_id: 6,
      phase: "learner",
      since: "2026-12-06T08:00:00.000Z",
      lag: 0,
      learner_reason: "voter cap 5 reached (--max-voters)",
    }],
  });
  assert.doesNotMatch(leader, /^learner:/m);
  assert.match(
    leader,
    /^joining: node 6 learner since 2026-12-06T08:00:00\.000Z; 0 entries behind the commit index; voter cap 5 reached \(--max-voters\)$/m,
  );
});
