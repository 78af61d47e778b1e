import assert from "node:assert/strict";
import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import type { PeerAddress } from "../../transport/p2p_endpoint.ts";
import { RpcError } from "../../transport/rpc.ts";
import type { Scheduler } from "../../util/scheduler.ts";
import { PausableClock } from "../testing/pausable_clock.ts";
import {
  LEADERLESS_CHECKS_MIN,
  REMOVAL_CHECK_INTERVAL_MS,
  removalEvidence,
  RemovalWatch,
  revocationEvidence,
  type SelfView,
  watchMemberForRemoval,
} from "./removal_watch.ts";
import type { RaftStatus } from "../../raft/raft_core.ts";
import type { ConfState } from "../../raft/types.ts";
import { SYSTEM_SCHEDULER } from "../../util/scheduler.ts";

const SELF: SelfView = {
  nodeId: 3,
  p2pNodeId: "c".repeat(64),
  clusterId: "cluster-a",
  lastIndex: 20,
};

function member(nodeId: number, p2pNodeId = String.fromCharCode(96 + nodeId).repeat(64)) {
  return {
    node_id: nodeId,
    role: "voter" as const,
    p2p_node_id: p2pNodeId,
    p2p_addresses: [`127.0.0.1:${7000 + nodeId}`],
    p2p_relay_url: null,
  };
}

function peerStatus(overrides: Partial<StatusJson> = {}): StatusJson {
  return {
    node_id: 1,
    cluster_id: "cluster-a",
    role: "leader",
    term: 5,
    leader_id: 1,
    commit_index: 25,
    applied_index: 25,
    members: [member(1), member(2)],
    join: null,
    ...overrides,
  };
}

Deno.test("removalEvidence() names the member that is ahead and no longer lists this node", () => {
  assert.equal(
    removalEvidence(peerStatus(), SELF),
    "node 1 (applied index 25, this node's log ends at 20) does not list node 3",
  );
});

Deno.test("removalEvidence() sees this node's id under another key as a removal", () => {
  const status = peerStatus({ members: [member(1), member(3, "f".repeat(64))] });
  assert.match(removalEvidence(status, SELF)!, /lists node 3 with another P2P id, f{64}$/);
});

Deno.test("removalEvidence() ignores a member that lists this node, lags behind it, or is in another cluster", () => {
  assert.equal(removalEvidence(peerStatus({ members: [member(1), member(3)] }), SELF), null);
  // Applied no further than this node's log: it may not know yet that this node was added.
  assert.equal(removalEvidence(peerStatus({ applied_index: 20 }), SELF), null);
  assert.equal(removalEvidence(peerStatus({ cluster_id: "cluster-b" }), SELF), null);
  assert.equal(removalEvidence(peerStatus({ cluster_id: null }), SELF), null);
});

/** A watch over scripted answers; records whom it asked and what it reported. */
function scriptedWatch(answers: Map<string, StatusJson | Error>, scheduler?: Scheduler) {
  const asked: string[] = [];
  const removed: string[] = [];
  const world = { self: SELF as SelfView | null };
  const peers: PeerAddress[] = [...answers.keys()].map((p2pNodeId) => ({
    p2pNodeId,
    addresses: [],
    relayUrl: null,
  }));
  const watch = new RemovalWatch({
    self: () => world.self,
    peers: () => peers,
    askStatus: (peer) => {
      asked.push(peer.p2pNodeId);
      const answer = answers.get(peer.p2pNodeId)!;
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
    onRemoved: (evidence) => removed.push(evidence),
    ...(scheduler === undefined ? {} : { scheduler }),
  });
  return { watch, asked, removed, world };
}

Deno.test("RemovalWatch asks nobody while the node has a leader, nor before it was leaderless for LEADERLESS_CHECKS_MIN checks", async () => {
  const { watch, asked, removed, world } = scriptedWatch(new Map([["one", peerStatus()]]));
  world.self = null;
  for (let i = 0; i < 2 * LEADERLESS_CHECKS_MIN; i++) assert.equal(await watch.check(), null);
  world.self = SELF;
  for (let i = 1; i < LEADERLESS_CHECKS_MIN; i++) assert.equal(await watch.check(), null);
  // A leader seen in between starts the count again.
  world.self = null;
  await watch.check();
  world.self = SELF;
  for (let i = 1; i < LEADERLESS_CHECKS_MIN; i++) assert.equal(await watch.check(), null);
  assert.deepEqual(asked, []);
  assert.match((await watch.check())!, /does not list node 3/);
  assert.deepEqual(asked, ["one"]);
  assert.equal(removed.length, 1);
});

Deno.test("RemovalWatch skips members that do not answer or still list the node, and reports a removal once", async () => {
  const { watch, asked, removed } = scriptedWatch(
    new Map<string, StatusJson | Error>([
      ["down", new Error("no answer within 1000 ms")],
      ["lagging", peerStatus({ node_id: 2, applied_index: 10 })],
      ["ahead", peerStatus({ node_id: 4 })],
    ]),
  );
  for (let i = 1; i < LEADERLESS_CHECKS_MIN; i++) await watch.check();
  const evidence = await watch.check();
  assert.match(evidence!, /^node 4 \(applied index 25/);
  assert.deepEqual(removed, [evidence]);
  assert.deepEqual(asked, ["down", "lagging", "ahead"]);
  assert.equal(await watch.check(), null, "once removed, it asks no more");
  assert.deepEqual(asked, ["down", "lagging", "ahead"]);
});

Deno.test("RemovalWatch reports nothing while every member that answers still lists the node", async () => {
  const { watch, removed } = scriptedWatch(
    new Map([["one", peerStatus({ members: [member(1), member(2), member(3)] })]]),
  );
  for (let i = 0; i < 3 * LEADERLESS_CHECKS_MIN; i++) assert.equal(await watch.check(), null);
  assert.deepEqual(removed, []);
});

Deno.test("revocationEvidence() takes a member's revoked refusal as removal, and nothing else", () => {
  const peer = { p2pNodeId: "a".repeat(64), addresses: ["127.0.0.1:7001"], relayUrl: null };
  assert.equal(
    revocationEvidence(new RpcError("revoked", "removed"), peer),
    `member ${"a".repeat(64)} refuses this node's key as revoked`,
  );
  assert.equal(revocationEvidence(new RpcError("unauthenticated", "who?"), peer), null);
  assert.equal(revocationEvidence(new Error("revoked"), peer), null);
});

Deno.test("removalEvidence() believes a forced member that names this node's key as removed, however long this node's log", () => {
  const forced = {
    at: "2026-01-02T03:04:05.000Z",
    from_index: 18,
    removed: [{ node_id: 3, p2p_node_id: SELF.p2pNodeId }, { node_id: 2, p2p_node_id: null }],
  };
  // The forced member has applied less than this old member holds: only the key tells.
  const status = peerStatus({ applied_index: 19, forced });
  assert.equal(
    removalEvidence(status, SELF),
    "node 1 was forced to a new membership at 2026-01-02T03:04:05.000Z (from index 18) " +
      "that removed this node",
  );
  // A fresh node that took the id 3 later has another key: not removed, and not in another cluster.
  const fresh = { ...SELF, p2pNodeId: "e".repeat(64) };
  assert.equal(removalEvidence(status, fresh), null);
  assert.equal(removalEvidence({ ...status, cluster_id: "cluster-b" }, SELF), null);
});

Deno.test("RemovalWatch checks on its injected clock: nothing before LEADERLESS_CHECKS_MIN intervals, the removal once they passed", async () => {
  const clock = new PausableClock();
  clock.pause();
  const { watch, asked, removed } = scriptedWatch(
    new Map([["ahead", peerStatus({ node_id: 4 })]]),
    clock,
  );
  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  watch.start();
  try {
    await clock.advance(REMOVAL_CHECK_INTERVAL_MS * (LEADERLESS_CHECKS_MIN - 1), settle);
    assert.deepEqual(asked, [], "asked before LEADERLESS_CHECKS_MIN checks");
    await clock.advance(REMOVAL_CHECK_INTERVAL_MS, settle);
    assert.deepEqual(asked, ["ahead"]);
    assert.equal(removed.length, 1);
    watch.stop();
    await clock.advance(REMOVAL_CHECK_INTERVAL_MS * 10, settle);
    assert.deepEqual(asked, ["ahead"], "a stopped watch asks no more");
  } finally {
    watch.stop();
  }
});

/**
 * Node 3's watch, leaderless: its log ends at 20 with configuration `latest`, it applied
 * `applied`, and node 1 answers that it applied 25 entries and does not list node 3.
 */
function leaderlessWatch(conf: { latest: ConfState; applied: ConfState; joining?: () => boolean }) {
  const asked: string[] = [];
  const removed: string[] = [];
  const watch = watchMemberForRemoval({
    nodeId: 3,
    p2pNodeId: SELF.p2pNodeId,
    scheduler: SYSTEM_SCHEDULER,
    raft: {
      status: () =>
        ({ leaderId: 0, lastIndex: 20, confState: conf.latest }) as unknown as RaftStatus,
    },
    appliedConfState: () => conf.applied,
    clusterId: () => "cluster-a",
    addressOf: (nodeId) => ({
      p2pNodeId: member(nodeId).p2p_node_id,
      addresses: [],
      relayUrl: null,
    }),
    restarted: true,
    joining: conf.joining ?? (() => false),
    askStatus: (peer) => {
      asked.push(peer.p2pNodeId);
      return Promise.resolve(peerStatus());
    },
    onRemoved: (evidence) => removed.push(evidence),
  });
  return { watch, asked, removed };
}

const STOPPED_AS_REMOVED =
  /node 1 \(applied index 25, this node's log ends at 20\) does not list node 3/;

Deno.test("a node whose own join still runs is not stopped as removed, though its log names it in an addition the members never committed (simulator seed 21884); once the join ends, the watch decides", async () => {
  // Node 3's addition as a learner, appended by a leader that crashed before committing it.
  const joining = { running: true };
  const { watch, asked, removed } = leaderlessWatch({
    latest: { voters: [1, 2], learners: [3] },
    applied: { voters: [1, 2], learners: [] },
    joining: () => joining.running,
  });
  for (let check = 0; check < 3 * LEADERLESS_CHECKS_MIN; check++) {
    assert.equal(await watch.check(), null);
  }
  assert.deepEqual(asked, [], "a joining node asks nobody");
  joining.running = false;
  for (let check = 1; check < LEADERLESS_CHECKS_MIN; check++) await watch.check();
  assert.match((await watch.check())!, STOPPED_AS_REMOVED);
  assert.equal(removed.length, 1);
});

Deno.test("a node whose log holds its own removal, not committed when its leader went, still asks, and finds out that the removal committed (simulator seed 2838)", async () => {
  const { watch, asked, removed } = leaderlessWatch({
    latest: { voters: [1, 2], learners: [] },
    applied: { voters: [1, 2, 3], learners: [] },
  });
  for (let check = 1; check < LEADERLESS_CHECKS_MIN; check++) await watch.check();
  assert.match((await watch.check())!, STOPPED_AS_REMOVED);
  assert.deepEqual(asked.toSorted(), [member(1).p2p_node_id, member(2).p2p_node_id]);
  assert.equal(removed.length, 1);
});
