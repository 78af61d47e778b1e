import assert from "node:assert/strict";
import { JOIN_RPC, STATUS_RPC, type StatusJson } from "../../transport/cluster_rpcs.ts";
import { type RpcCallOptions, RpcError } from "../../transport/rpc.ts";
import type { RpcCall } from "../../auth/authenticate.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { JoinProgress } from "./join_progress.ts";
import { joinThrough, type SeedLink } from "./joiner.ts";

const SELF: MemberInfo = {
  nodeId: 2,
  p2pNodeId: "b".repeat(64),
  addresses: ["127.0.0.1:7002"],
  relayUrl: null,
};

/** The seed's `cluster.status`: the join reads only its members. */
const STATUS = { members: [] } as Partial<StatusJson> as StatusJson;

/**
 * A seed that answers `cluster.status` and never answers `cluster.join`: the call ends only
 * when the signal it was given aborts. Records the options of every join call.
 */
function silentLeader(): { link: SeedLink; joinCalls: RpcCallOptions[] } {
  const joinCalls: RpcCallOptions[] = [];
  const call = ((definition, _request, options) => {
    if (definition.method === STATUS_RPC.method) return Promise.resolve(STATUS);
    assert.equal(definition.method, JOIN_RPC.method);
    joinCalls.push(options);
    return new Promise((_resolve, reject) => {
      options.signal?.addEventListener("abort", () => reject(options.signal?.reason), {
        once: true,
      });
    });
  }) as RpcCall;
  return { link: seedAt7001(call), joinCalls };
}

/** Node 1 at 127.0.0.1:7001 as a seed whose calls `call` answers. */
function seedAt7001(call: RpcCall): SeedLink {
  return {
    peer: "127.0.0.1:7001",
    nodeId: 1,
    p2pNodeId: "a".repeat(64),
    path: () => "direct",
    call,
    close: () => {},
  };
}

Deno.test("joinThrough() ends its pending join request when the join's signal aborts (the log added the node), not at the request's deadline", async () => {
  const { link, joinCalls } = silentLeader();
  const joinDone = new AbortController();
  const progress = new JoinProgress("discovering");
  const joined = joinThrough({
    self: SELF,
    directory: { rememberProvisional: () => {} },
    progress,
    joinTimeoutMs: 60_000,
    clusterSecret: null,
    signal: joinDone.signal,
    connect: () => Promise.reject(new Error("no leader to connect to in this test")),
  }, () => Promise.resolve(link));
  // The request is out once the join reached its phase.
  for (let turn = 0; turn < 1000 && joinCalls.length === 0; turn++) await Promise.resolve();
  assert.equal(joinCalls.length, 1, "the join request was sent");
  assert.equal(progress.phase, "joining");
  assert.equal(joinCalls[0]!.signal, joinDone.signal, "the request carries the join's signal");
  joinDone.abort(new Error("the log added node 2"));
  await assert.rejects(joined, /the log added node 2/);
});

Deno.test("joinThrough() ends its question to a follower for the leader's name when the join's signal aborts", async () => {
  // The follower answers the first status, refuses the join as not_leader, and never answers
  // the second status (which would name the leader).
  const statusCalls: RpcCallOptions[] = [];
  const call = ((definition, _request, options) => {
    if (definition.method === JOIN_RPC.method) {
      return Promise.reject(new RpcError("not_leader", "this node is not the leader (leader: 3)"));
    }
    assert.equal(definition.method, STATUS_RPC.method);
    statusCalls.push(options);
    if (statusCalls.length === 1) return Promise.resolve(STATUS);
    return new Promise((_resolve, reject) => {
      options.signal?.addEventListener("abort", () => reject(options.signal?.reason), {
        once: true,
      });
    });
  }) as RpcCall;
  const follower = seedAt7001(call);
  const joinDone = new AbortController();
  const joined = joinThrough({
    self: SELF,
    directory: { rememberProvisional: () => {} },
    progress: new JoinProgress("discovering"),
    joinTimeoutMs: 60_000,
    clusterSecret: null,
    signal: joinDone.signal,
    connect: () => Promise.reject(new Error("no leader to connect to in this test")),
  }, () => Promise.resolve(follower));
  for (let turn = 0; turn < 1000 && statusCalls.length < 2; turn++) await Promise.resolve();
  assert.equal(statusCalls.length, 2, "the follower was asked for the leader's name");
  assert.equal(statusCalls[1]!.signal, joinDone.signal, "that question carries the join's signal");
  joinDone.abort(new Error("the node stops"));
  await assert.rejects(joined, /the node stops/);
});
