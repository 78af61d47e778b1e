import assert from "node:assert/strict";
import { ClusterSecret } from "../../auth/cluster_secret.ts";
import { SecretGate } from "../../auth/secret_gate.ts";
import { SeedNotFoundError } from "../../bootstrap/bootstrap_error.ts";
import type { BootstrapEvent } from "../../bootstrap/bootstrap_client.ts";
import { bootstrapInfoFor } from "../../bootstrap/bootstrap_info.ts";
import { signBootstrapInfo } from "../../bootstrap/bootstrap_signature.ts";
import { NodeMetrics } from "../../http/metrics.ts";
import { startHttpServer } from "../../http/http_server.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { JOIN_RPC, STATUS_RPC, type StatusJson } from "../../transport/cluster_rpcs.ts";
import { SecretKey } from "../../transport/iroh.ts";
import type { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import { PING_RPC, pingHandler } from "../../transport/ping_rpc.ts";
import { RpcError, type RpcHandler, RpcServer } from "../../transport/rpc.ts";
import { bindLoopbackEndpoint } from "../../transport/testing.ts";
import { JoinProgress } from "./join_progress.ts";
import { joinCluster, JoinRefusedError } from "./joiner.ts";
import { busyPauseMs } from "./join_pause.ts";
import { MemberDirectory } from "../membership/member_directory.ts";
import { SYSTEM_SCHEDULER } from "../../util/scheduler.ts";

/** Secrets for the tests of joining a cluster that has one. */
const SECRET = await ClusterSecret.fromBytes(
  new TextEncoder().encode("the cluster's secret, 32 bytes."),
);
const OTHER_SECRET = await ClusterSecret.fromBytes(
  new TextEncoder().encode("another secret of 32 bytes......"),
);

/**
 * A seed that is no real node: `/bootstrap` over HTTP and `ping`, `cluster.status` and
 * `cluster.join` over Iroh, with the join answered by the test. With `signWith`, its
 * `/bootstrap` is signed; with `gateWith`, status and join are behind a `SecretGate`. It is
 * node 1 and the leader unless `nodeId` says otherwise; the test may change its `status`.
 */
async function startFakeSeed(
  join: RpcHandler<typeof JOIN_RPC>,
  secrets: { signWith?: ClusterSecret; gateWith?: ClusterSecret } = {},
  nodeId = 1,
) {
  const endpoint = await bindLoopbackEndpoint();
  const seedRecord: MemberInfo = {
    nodeId,
    p2pNodeId: endpoint.nodeId,
    addresses: endpoint.addresses(),
    relayUrl: null,
  };
  const status: StatusJson = {
    node_id: nodeId,
    cluster_id: "fake-cluster",
    role: "leader",
    term: 2,
    leader_id: nodeId,
    commit_index: 5,
    applied_index: 5,
    members: [{
      node_id: nodeId,
      role: "voter",
      p2p_node_id: seedRecord.p2pNodeId,
      p2p_addresses: seedRecord.addresses,
      p2p_relay_url: null,
    }],
    join: null,
  };
  const server = new RpcServer();
  server.register(PING_RPC, pingHandler({ nodeId, p2pNodeId: endpoint.nodeId }));
  const gate = secrets.gateWith === undefined ? null : new SecretGate({
    secret: secrets.gateWith,
    selfP2pNodeId: endpoint.nodeId,
    isMember: () => false,
  });
  gate?.register(server);
  const guarded = gate?.guard(server) ?? server;
  guarded.register(STATUS_RPC, () => status);
  guarded.register(JOIN_RPC, join);
  server.serve(endpoint);
  const bootstrap = () => {
    const info = bootstrapInfoFor(endpoint, { nodeId, clusterId: "fake-cluster" });
    return secrets.signWith === undefined ? info : signBootstrapInfo(info, secrets.signWith);
  };
  const http = await startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    metrics: new NodeMetrics(),
    routes: {
      bootstrap,
      status: () => status,
      isServing: () => true,
    },
  });
  return {
    peer: `http://127.0.0.1:${http.port}/bootstrap`,
    seedRecord,
    status,
    gate,
    close: async () => {
      await http.shutdown();
      await endpoint.close();
    },
  };
}

/** The joiner: node 2 with its own endpoint, an empty directory and a fresh progress. */
async function startJoiner() {
  const endpoint = await bindLoopbackEndpoint();
  const self: MemberInfo = {
    nodeId: 2,
    p2pNodeId: endpoint.nodeId,
    addresses: endpoint.addresses(),
    relayUrl: null,
  };
  const none = () => ({ voters: [], learners: [] });
  const directory = new MemberDirectory(2, { latest: none, applied: none });
  return { endpoint, self, directory, progress: new JoinProgress("discovering") };
}

function joinOptions(
  joiner: {
    endpoint: P2pEndpoint;
    self: MemberInfo;
    directory: MemberDirectory;
    progress: JoinProgress;
  },
  options: { peer: string; joinTimeoutMs: number; clusterSecret?: ClusterSecret },
) {
  return {
    ...joiner,
    peers: [options.peer],
    joinTimeoutMs: options.joinTimeoutMs,
    clusterSecret: options.clusterSecret ?? null,
  };
}

/** A join handler that counts its requests and admits the joiner, the seed its leader. */
function admitting(seed: () => { seedRecord: MemberInfo }) {
  const handler = Object.assign(
    () => {
      handler.requests++;
      const { seedRecord } = seed();
      return {
        clusterId: "fake-cluster",
        leaderId: seedRecord.nodeId,
        index: 9,
        members: [seedRecord],
      };
    },
    { requests: 0 },
  );
  return handler;
}

Deno.test("joinCluster() retries a refusal that may pass, then joins and records what the seed said", async () => {
  const requests: MemberInfo[] = [];
  // A member the join answer names that the seed's status did not (it joined meanwhile).
  const third: MemberInfo = {
    nodeId: 3,
    p2pNodeId: SecretKey.generate().public().toString(),
    addresses: ["127.0.0.1:7003"],
    relayUrl: null,
  };
  const seed = await startFakeSeed((request) => {
    requests.push(request.member);
    if (requests.length < 3) throw new RpcError("no_leader", "electing a leader; retry");
    return { clusterId: "fake-cluster", leaderId: 1, index: 9, members: [seed.seedRecord, third] };
  });
  const joiner = await startJoiner();
  try {
    const outcome = await joinCluster(
      joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 10_000 }),
    );
    assert.deepStrictEqual(outcome, { clusterId: "fake-cluster", leaderId: 1, peer: seed.peer });
    assert.equal(requests.length, 3);
    for (const request of requests) assert.deepStrictEqual(request, joiner.self);
    assert.equal(joiner.progress.phase, "learner");
    // The refusals were the state while they lasted; once added, the join has no error.
    assert.equal(joiner.progress.toJson()?.last_error, null);
    // Until its own log names it, the joiner accepts the seed's members.
    assert.equal(joiner.directory.memberIdOf(seed.seedRecord.p2pNodeId), 1);
    assert.equal(joiner.directory.memberIdOf(third.p2pNodeId), 3);
  } finally {
    await joiner.endpoint.close();
    await seed.close();
  }
});

Deno.test("joinCluster() stops at once with JoinRefusedError when the cluster answers invalid", async () => {
  let requests = 0;
  const seed = await startFakeSeed(() => {
    requests++;
    throw new RpcError("invalid", "node id 2 is taken by a member with P2P id abc");
  });
  const joiner = await startJoiner();
  try {
    await assert.rejects(
      joinCluster(joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 10_000 })),
      (error) =>
        error instanceof JoinRefusedError &&
        /^the cluster refused node 2: .*node id 2 is taken by a member with P2P id abc/.test(
          error.message,
        ),
    );
    assert.equal(requests, 1);
  } finally {
    await joiner.endpoint.close();
    await seed.close();
  }
});

/** How long the seed may take to answer twice on a loaded machine before the test fails. */
const ANSWERS_WAIT_MS = 60_000;

Deno.test("joinCluster() gives up after the join timeout, naming the last error", async () => {
  let requests = 0;
  const seed = await startFakeSeed(() => {
    requests++;
    throw new RpcError("busy", "another membership change is in progress");
  });
  const joiner = await startJoiner();
  // The join's clock stands still until the seed has refused twice (or ANSWERS_WAIT_MS
  // passed): on a loaded machine the first answers alone can take longer than the 2 s
  // timeout, whose end the test is about; it then runs as the system's.
  const heldAtMs = performance.now();
  let runningSinceMs: number | null = null;
  const scheduler = {
    ...SYSTEM_SCHEDULER,
    now: () => {
      const nowMs = performance.now();
      if (runningSinceMs === null && (requests >= 2 || nowMs - heldAtMs > ANSWERS_WAIT_MS)) {
        runningSinceMs = nowMs;
      }
      return runningSinceMs === null ? heldAtMs : heldAtMs + (nowMs - runningSinceMs);
    },
  };
  try {
    await assert.rejects(
      joinCluster({
        ...joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 2_000 }),
        scheduler,
      }),
      (error) =>
        !(error instanceof JoinRefusedError) && error instanceof Error &&
        /^could not join within --join-timeout 2000 ms; last error: .*another membership change/
          .test(error.message),
    );
    assert.ok(requests >= 2, `retried: ${requests} requests`);
  } finally {
    await joiner.endpoint.close();
    await seed.close();
  }
});

Deno.test("joinCluster() with the secret checks the signed /bootstrap, proves the secret to the seed, then joins", async () => {
  let seed: Awaited<ReturnType<typeof startFakeSeed>> | null = null;
  const join = admitting(() => seed!);
  seed = await startFakeSeed(join, { signWith: SECRET, gateWith: SECRET });
  const joiner = await startJoiner();
  const phases: string[] = [];
  joiner.progress.onPhase((phase) => phases.push(phase));
  try {
    const outcome = await joinCluster(
      joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 10_000, clusterSecret: SECRET }),
    );
    assert.equal(outcome.clusterId, "fake-cluster");
    assert.equal(join.requests, 1);
    assert.deepStrictEqual(phases, ["connected", "authenticated", "joining", "learner"]);
    assert.ok(seed.gate!.admits(joiner.endpoint.nodeId), "the seed admits the joiner's key");
  } finally {
    await joiner.endpoint.close();
    await seed.close();
  }
});

Deno.test("joinCluster() without the secret stops at once when the seed requires it", async () => {
  let seed: Awaited<ReturnType<typeof startFakeSeed>> | null = null;
  const join = admitting(() => seed!);
  seed = await startFakeSeed(join, { signWith: SECRET, gateWith: SECRET });
  const joiner = await startJoiner();
  try {
    await assert.rejects(
      joinCluster(joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 10_000 })),
      (error) =>
        error instanceof JoinRefusedError &&
        /^the cluster refused node 2: node 1 at http:\/\/127\.0\.0\.1:\d+\/bootstrap: this cluster requires the cluster secret: pass --cluster-secret-file/
          .test(error.message),
    );
    assert.equal(join.requests, 0);
  } finally {
    await joiner.endpoint.close();
    await seed.close();
  }
});

for (
  const [what, signWith, pattern] of [
    [
      "signed with another secret",
      OTHER_SECRET,
      /signature does not match this side's cluster secret/,
    ],
    ["an unsigned /bootstrap", undefined, /is not signed, but this side has a cluster secret/],
  ] as const
) {
  Deno.test(`joinCluster() with the secret refuses ${what} and gives up at the join timeout`, async () => {
    let seed: Awaited<ReturnType<typeof startFakeSeed>> | null = null;
    const join = admitting(() => seed!);
    seed = await startFakeSeed(join, signWith === undefined ? {} : { signWith });
    const joiner = await startJoiner();
    try {
      const events: BootstrapEvent[] = [];
      await assert.rejects(
        joinCluster({
          ...joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 1500, clusterSecret: SECRET }),
          onBootstrapEvent: (event) => events.push(event),
        }),
        // The last attempt may be cut short by the join's deadline on a loaded machine
        // (a timeout, and then the final message names that); what matters is that the
        // answers seen were refused, each with the reason, and never used.
        (error) =>
          error instanceof SeedNotFoundError &&
          error.failures.every((failure) =>
            failure.reason === "bad_signature" || failure.reason === "timeout"
          ) &&
          events.some((event) => event.reason === "bad_signature" && pattern.test(event.message)),
      );
      assert.equal(join.requests, 0);
      assert.equal(joiner.progress.phase, "discovering", "never connected to the advertised key");
    } finally {
      await joiner.endpoint.close();
      await seed.close();
    }
  });
}

Deno.test("joinCluster() stops at once, sending nothing, when the seed does not prove the secret", async () => {
  let seed: Awaited<ReturnType<typeof startFakeSeed>> | null = null;
  const join = admitting(() => seed!);
  // Signed with the joiner's secret, but the gate holds another: only the proofs can fail.
  seed = await startFakeSeed(join, { signWith: SECRET, gateWith: OTHER_SECRET });
  const joiner = await startJoiner();
  try {
    await assert.rejects(
      joinCluster(
        joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 10_000, clusterSecret: SECRET }),
      ),
      (error) =>
        error instanceof JoinRefusedError &&
        /^the seed is not trusted: node 1 at .*: node [0-9a-f]{64} did not prove the cluster secret \(its proof does not match this side's secret\)/
          .test(error.message),
    );
    assert.equal(join.requests, 0);
    assert.equal(seed.gate!.admits(joiner.endpoint.nodeId), false);
  } finally {
    await joiner.endpoint.close();
    await seed.close();
  }
});

Deno.test("joinCluster() waits out a busy leader on the same connection, with no new seed search", async () => {
  let requests = 0;
  let seed: Awaited<ReturnType<typeof startFakeSeed>> | null = null;
  seed = await startFakeSeed(() => {
    requests++;
    if (requests < 3) {
      throw new RpcError("busy", "4 joins are queued ahead of node 2; retry in 30 ms", {
        retryAfterMs: 30,
      });
    }
    return { clusterId: "fake-cluster", leaderId: 1, index: 9, members: [seed!.seedRecord] };
  });
  const joiner = await startJoiner();
  const seedsFound: BootstrapEvent[] = [];
  try {
    await joinCluster({
      ...joinOptions(joiner, { peer: seed.peer, joinTimeoutMs: 10_000 }),
      onBootstrapEvent: (event) => {
        if (event.outcome === "ok") seedsFound.push(event);
      },
    });
    assert.equal(requests, 3);
    assert.equal(seedsFound.length, 1, "one seed search, one /bootstrap fetch");
    assert.equal(joiner.progress.phase, "learner");
  } finally {
    await joiner.endpoint.close();
    await seed.close();
  }
});

Deno.test("busyPauseMs() stretches the leader's pause by up to half at random, else backs off on its own", () => {
  assert.equal(busyPauseMs(200, 0, () => 0), 200);
  assert.equal(busyPauseMs(200, 5, () => 0.999), 300);
  assert.equal(busyPauseMs(null, 0, () => 0), 13);
  assert.ok(busyPauseMs(null, 20, () => 0.5) <= 1_000);
});

Deno.test("joinCluster() asks the leader a follower names when the follower answers not_leader", async () => {
  // The joiner's learner was added by an earlier request whose answer was lost: the
  // follower counts it a member, so answers not_leader instead of forwarding its join.
  let followerRequests = 0;
  const follower = await startFakeSeed(() => {
    followerRequests++;
    throw new RpcError("not_leader", "this node is not the leader (leader: 3)");
  });
  let leader: Awaited<ReturnType<typeof startFakeSeed>> | null = null;
  const join = admitting(() => leader!);
  leader = await startFakeSeed(join, {}, 3);
  Object.assign(follower.status, { role: "follower", leader_id: 3 });
  follower.status.members.push(...leader.status.members);
  const joiner = await startJoiner();
  try {
    const outcome = await joinCluster(
      joinOptions(joiner, { peer: follower.peer, joinTimeoutMs: 30_000 }),
    );
    assert.deepStrictEqual(outcome, {
      clusterId: "fake-cluster",
      leaderId: 3,
      peer: follower.peer,
    });
    assert.equal(followerRequests, 1);
    assert.equal(join.requests, 1, "the leader was asked");
    assert.equal(joiner.progress.phase, "learner");
  } finally {
    await joiner.endpoint.close();
    await leader.close();
    await follower.close();
  }
});
