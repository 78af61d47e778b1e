import assert from "node:assert/strict";
import { bootstrapInfoFor } from "../bootstrap/bootstrap_info.ts";
import { NodeMetrics } from "../http/metrics.ts";
import { startHttpServer } from "../http/http_server.ts";
import { GET_RPC, LEAVE_RPC, STATUS_RPC, type StatusJson } from "../transport/cluster_rpcs.ts";
import type { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { PING_RPC, pingHandler } from "../transport/ping_rpc.ts";
import { RpcError, type RpcHandler, RpcServer } from "../transport/rpc.ts";
import { bindLoopbackEndpoint } from "../transport/testing.ts";
import { BlixardClient } from "./client.ts";

/** A member that is no real node: `ping`, `cluster.status` and `kv.get` as the test says. */
async function startFakeMember(nodeId: number, get: RpcHandler<typeof GET_RPC>) {
  const endpoint = await bindLoopbackEndpoint();
  const server = new RpcServer();
  server.register(PING_RPC, pingHandler({ nodeId, p2pNodeId: endpoint.nodeId }));
  server.register(GET_RPC, get);
  server.serve(endpoint);
  return { nodeId, endpoint, server };
}

/** Every member answers `cluster.status` naming `members`; `first` serves `/bootstrap`. */
async function serveFakeCluster(first: FakeMember, members: FakeMember[]) {
  for (const member of members) {
    member.server.register(STATUS_RPC, () => statusNaming(member, members));
  }
  return await startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    metrics: new NodeMetrics(),
    routes: {
      bootstrap: () =>
        bootstrapInfoFor(first.endpoint, { nodeId: first.nodeId, clusterId: "fake-cluster" }),
      status: () => statusNaming(first, members),
      isServing: () => true,
    },
  });
}

type FakeMember = Awaited<ReturnType<typeof startFakeMember>>;

function statusNaming(
  self: { nodeId: number },
  members: { nodeId: number; endpoint: P2pEndpoint }[],
): StatusJson {
  return {
    node_id: self.nodeId,
    cluster_id: "fake-cluster",
    role: "follower",
    term: 2,
    leader_id: null,
    commit_index: 5,
    applied_index: 5,
    members: members.map((member) => ({
      node_id: member.nodeId,
      role: "voter" as const,
      p2p_node_id: member.endpoint.nodeId,
      p2p_addresses: member.endpoint.addresses(),
      p2p_relay_url: null,
    })),
    join: null,
  };
}

Deno.test("BlixardClient retries a call refused as not_member through another member", async () => {
  const value = new TextEncoder().encode("from node 2");
  let refused = 0;
  // Node 1 was removed and does not know it: the leader refuses what it forwards.
  const removed = await startFakeMember(1, () => {
    refused++;
    throw new RpcError(
      "not_member",
      "the request was forwarded by node 1, which was removed from this cluster; ask another member",
    );
  });
  const current = await startFakeMember(2, () => ({ value, appliedIndex: 5 }));
  const members = [removed, current];
  const http = await serveFakeCluster(removed, members);
  try {
    const client = await BlixardClient.connect(`http://127.0.0.1:${http.port}/bootstrap`);
    try {
      assert.deepStrictEqual(await client.get("key"), value);
      assert.ok(refused >= 1, "the removed member was asked first");
    } finally {
      await client.close();
    }
  } finally {
    await http.shutdown();
    for (const member of members) await member.endpoint.close();
  }
});

Deno.test("BlixardClient.leave() waits out an election at the node it talks to, never asks another member to leave, and gives up on other errors", async () => {
  const noLeader = () => new RpcError("no_leader", "no leader is known; retry shortly");
  const first = await startFakeMember(1, () => ({ value: null, appliedIndex: 0 }));
  const second = await startFakeMember(2, () => ({ value: null, appliedIndex: 0 }));
  const members = [first, second];
  const asked: number[] = [];
  // Node 1: two elections' worth of no_leader, then the leave; later, a failure.
  let leaveAnswers: (() => { index: number })[] = [
    () => {
      throw noLeader();
    },
    () => {
      throw noLeader();
    },
    () => ({ index: 41 }),
  ];
  first.server.register(LEAVE_RPC, () => (asked.push(1), leaveAnswers.shift()!()));
  second.server.register(LEAVE_RPC, () => (asked.push(2), { index: 99 }));
  const http = await serveFakeCluster(first, members);
  try {
    const client = await BlixardClient.connect(`http://127.0.0.1:${http.port}/bootstrap`);
    try {
      assert.deepStrictEqual(await client.leave({ timeoutMs: 30_000 }), { index: 41 });
      assert.deepStrictEqual(asked, [1, 1, 1]);

      leaveAnswers = [() => {
        throw new RpcError("unavailable", "the node is stopping its transport");
      }];
      await assert.rejects(client.leave({ timeoutMs: 30_000 }), /stopping its transport/);
      assert.deepStrictEqual(asked, [1, 1, 1, 1], "a leave went to another member");
    } finally {
      await client.close();
    }
  } finally {
    await http.shutdown();
    for (const member of members) await member.endpoint.close();
  }
});
