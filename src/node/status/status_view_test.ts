import assert from "node:assert/strict";
import type { RaftStatus } from "../../raft/raft_core.ts";
import { type ConfState, NO_NODE, type Role } from "../../raft/types.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { type StatusJson, statusSchema } from "../../transport/cluster_rpcs.ts";
import { MemberDirectory } from "../membership/member_directory.ts";
import {
  diskFullJson,
  FULL_STATUS_COMMAND,
  publicStatusJson,
  startingStatusJson,
  statusJson,
  type StatusSources,
} from "./status_view.ts";
import { PROMOTION_POLICY_DEFAULT } from "../membership/autopilot.ts";

function raftStatus(
  role: Role,
  confState: ConfState,
  overrides: Partial<RaftStatus> = {},
): RaftStatus {
  return {
    id: 1,
    term: 4,
    vote: 1,
    commit: 17,
    applied: 17,
    role,
    leaderId: role === "leader" ? 1 : NO_NODE,
    confState,
    lastIndex: 17,
    leadTransferee: NO_NODE,
    progress: [],
    ...overrides,
  };
}

function record(nodeId: number): MemberInfo {
  return {
    nodeId,
    p2pNodeId: String(nodeId).repeat(64).slice(0, 64),
    addresses: [`127.0.0.1:${7000 + nodeId}`],
    relayUrl: null,
  };
}

function sources(raft: RaftStatus | null, overrides: Partial<StatusSources> = {}): StatusSources {
  return {
    nodeId: 1,
    raft,
    clusterId: "c-1",
    appliedIndex: 16,
    members: [],
    directory: new MemberDirectory(1, {
      latest: () => raft?.confState ?? { voters: [], learners: [] },
      applied: () => ({ voters: [], learners: [] }),
    }),
    join: null,
    stopping: false,
    promotionPolicy: PROMOTION_POLICY_DEFAULT,
    ...overrides,
  };
}

const THREE_VOTERS: ConfState = { voters: [1, 2, 3], learners: [] };

Deno.test("statusJson() maps the core's roles onto the /status roles", () => {
  const cases: [Role, string][] = [
    ["leader", "leader"],
    ["follower", "follower"],
    ["candidate", "candidate"],
    ["preCandidate", "candidate"],
  ];
  for (const [role, expected] of cases) {
    assert.equal(statusJson(sources(raftStatus(role, THREE_VOTERS))).role, expected, role);
  }
});

Deno.test("statusJson() calls a node learner, joining or stopping by its membership, not its core role", () => {
  const learner = raftStatus("follower", { voters: [2], learners: [1] });
  assert.equal(statusJson(sources(learner)).role, "learner");
  // A joiner whose log does not name it yet, and one without any Raft state.
  const notNamed = raftStatus("follower", { voters: [2, 3], learners: [] });
  assert.equal(statusJson(sources(notNamed)).role, "joining");
  assert.equal(statusJson(sources(null)).role, "joining");
  const stopping = sources(raftStatus("leader", THREE_VOTERS), { stopping: true });
  assert.equal(statusJson(stopping).role, "stopping");
});

Deno.test("statusJson() reports no leader as null and zeros before any Raft state", () => {
  const status = statusJson(sources(raftStatus("follower", THREE_VOTERS)));
  assert.equal(status.leader_id, null);
  assert.equal(statusJson(sources(raftStatus("leader", THREE_VOTERS))).leader_id, 1);
  const empty = statusJson(sources(null, { clusterId: null, appliedIndex: 0 }));
  const starting = {
    node_id: 1,
    cluster_id: null,
    role: "joining",
    term: 0,
    leader_id: null,
    commit_index: 0,
    applied_index: 0,
    members: [],
    join: null,
    joins: [],
    learner_reason: null,
    paths: [],
    disk_full: null,
  };
  assert.deepStrictEqual({ ...empty, join: null }, starting);
  assert.deepStrictEqual(
    startingStatusJson(1, null),
    starting,
    "what /status shows before the storage is open",
  );
});

Deno.test("statusJson() lists voters and learners sorted by id, each with its record", () => {
  const raft = raftStatus("leader", { voters: [3, 1], learners: [2, 4] });
  const input = sources(raft, {
    // Node 4's record is known only from the applied state, node 2's from neither.
    members: [{ nodeId: 4, role: "learner", info: record(4) }],
  });
  input.directory.remember(record(1));
  input.directory.remember(record(3));
  const status = statusJson(input);
  assert.deepStrictEqual(status.members.map((member) => [member.node_id, member.role]), [
    [1, "voter"],
    [2, "learner"],
    [3, "voter"],
    [4, "learner"],
  ]);
  assert.deepStrictEqual(status.members[2], {
    node_id: 3,
    role: "voter",
    p2p_node_id: record(3).p2pNodeId,
    p2p_addresses: ["127.0.0.1:7003"],
    p2p_relay_url: null,
  });
  assert.equal(status.members[3]!.p2p_node_id, record(4).p2pNodeId);
  assert.deepStrictEqual(status.members[1], {
    node_id: 2,
    role: "learner",
    p2p_node_id: null,
    p2p_addresses: [],
    p2p_relay_url: null,
  });
});

Deno.test("statusJson() prefers the directory's newer record to the applied one", () => {
  const raft = raftStatus("leader", THREE_VOTERS);
  const applied = record(2);
  const input = sources(raft, { members: [{ nodeId: 2, role: "voter", info: applied }] });
  input.directory.remember({ ...applied, addresses: ["127.0.0.1:9002"] });
  const member = statusJson(input).members.find((entry) => entry.node_id === 2)!;
  assert.deepStrictEqual(member.p2p_addresses, ["127.0.0.1:9002"]);
});

Deno.test("statusJson() produces a document the /status schema accepts, join progress included", () => {
  const join = { phase: "learner" as const, since: "2026-01-01T00:00:00.000Z", last_error: "x" };
  const status = statusJson(sources(raftStatus("follower", THREE_VOTERS), { join }));
  assert.deepStrictEqual(statusSchema.parse(status), status);
  const { lastIndex, commit } = raftStatus("follower", THREE_VOTERS);
  assert.deepStrictEqual(status.join, {
    ...join,
    catch_up: { match_index: lastIndex, commit_index: commit },
  });
  assert.equal(status.term, 4);
  assert.equal(status.commit_index, 17);
  assert.equal(status.applied_index, 16);
  assert.equal(status.cluster_id, "c-1");
});

Deno.test("publicStatusJson() keeps ids and roles and drops P2P ids, addresses, term, indexes and join errors", () => {
  const key = "a".repeat(64);
  const full: StatusJson = {
    ...startingStatusJson(2, { phase: "learner", since: "2026-01-01", last_error: "refused" }),
    cluster_id: "cluster-a",
    role: "follower",
    term: 7,
    leader_id: 1,
    members: [
      {
        node_id: 1,
        role: "voter",
        p2p_node_id: key,
        p2p_addresses: ["10.0.0.1:7001"],
        p2p_relay_url: "https://relay.example",
      },
      { node_id: 2, role: "learner", p2p_node_id: null, p2p_addresses: [], p2p_relay_url: null },
    ],
  };
  const shown = publicStatusJson(full);
  assert.deepStrictEqual(shown, {
    node_id: 2,
    cluster_id: "cluster-a",
    role: "follower",
    leader_id: 1,
    members: [{ node_id: 1, role: "voter" }, { node_id: 2, role: "learner" }],
    join: { phase: "learner", since: "2026-01-01" },
    disk_full: null,
    full_status: FULL_STATUS_COMMAND,
  });
  const text = JSON.stringify(shown);
  for (const hidden of [key, "10.0.0.1", "relay.example", "refused"]) {
    assert.ok(!text.includes(hidden), hidden);
  }
});

Deno.test("statusJson() shows the path and RTT to each member it has a connection to, never to itself", () => {
  const raft = raftStatus("leader", THREE_VOTERS);
  const paths = new Map([[2, { path: "direct" as const, rttMs: 0.4321 }], [1, {
    path: "direct" as const,
    rttMs: 1,
  }]]);
  const status = statusJson(sources(raft, { pathOf: (nodeId) => paths.get(nodeId) ?? null }));
  assert.deepStrictEqual(status.paths, [{ node_id: 2, path: "direct", rtt_ms: 0.4 }]);
  assert.deepStrictEqual(statusSchema.parse(status), status);
});

Deno.test("statusJson() tells a learner why it is one: the voter cap once reached, else catching up", () => {
  const full = { voters: [2, 3, 4, 5, 6], learners: [1] };
  const capped = statusJson(sources(raftStatus("follower", full)));
  assert.equal(capped.role, "learner");
  assert.equal(capped.learner_reason, "voter cap 5 reached (--max-voters)");
  const roomy = statusJson(
    sources(raftStatus("follower", full), { promotionPolicy: { votersMax: 7 } }),
  );
  assert.match(roomy.learner_reason!, /^catching up/);
  assert.equal(statusJson(sources(raftStatus("follower", THREE_VOTERS))).learner_reason, null);
  statusSchema.parse(capped);
});

Deno.test("statusJson() lists its fields in the schema's order, so `cluster status --json` prints what /status served", () => {
  const status = statusJson(sources(raftStatus("follower", THREE_VOTERS)));
  assert.deepStrictEqual(Object.keys(statusSchema.parse(status)), Object.keys(status));
});

Deno.test("statusJson() shows a full disk: since when (wall time), the storage's error, the bytes free; the public status only since when", () => {
  const diskFull = diskFullJson(
    { sinceMs: 1_000, message: "database or disk is full" },
    { nowMs: 3_500, wallNowMs: Date.parse("2026-12-06T10:00:02.500Z") },
    4096.7,
  );
  assert.deepStrictEqual(diskFull, {
    since: "2026-12-06T10:00:00.000Z",
    error: "database or disk is full",
    free_bytes: 4096,
  });
  const status = statusJson(sources(raftStatus("follower", THREE_VOTERS), { diskFull }));
  assert.deepStrictEqual(status.disk_full, diskFull);
  assert.deepStrictEqual(statusSchema.parse(status), status);
  assert.deepStrictEqual(publicStatusJson(status).disk_full, { since: diskFull.since });
  const roomy = statusJson(sources(raftStatus("follower", THREE_VOTERS)));
  assert.equal(roomy.disk_full, null);
  assert.equal(publicStatusJson(roomy).disk_full, null);
  const long = diskFullJson({ sinceMs: 0, message: "e".repeat(5_000) }, {
    nowMs: 0,
    wallNowMs: 0,
  }, null);
  assert.equal(long.free_bytes, null);
  statusSchema.parse({ ...roomy, disk_full: long });
});
