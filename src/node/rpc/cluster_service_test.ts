import assert from "node:assert/strict";
import { ANNOUNCE_RPC, JOIN_RPC } from "../../transport/cluster_rpcs.ts";
import {
  type RpcDefinition,
  RpcError,
  type RpcHandler,
  type RpcServer,
} from "../../transport/rpc.ts";
import { ClusterService } from "./cluster_service.ts";
import { InProcessCluster, memberInfoOf, type TestMember } from "../testing/in_process_cluster.ts";

/** The handlers `ClusterService` registers for `member`, by method. */
function serviceOf(member: TestMember): Map<string, RpcHandler<RpcDefinition>> {
  const handlers = new Map<string, RpcHandler<RpcDefinition>>();
  const service = new ClusterService({
    nodeId: member.nodeId,
    raft: member.raft,
    stateMachine: member.stateMachine,
    directory: member.directory,
    membership: member.membership,
    rpcClient: {} as never,
    status: () => {
      throw new Error("not used");
    },
    leave: () => Promise.reject(new Error("not used")),
  });
  const registrar: Pick<RpcServer, "register"> = {
    register: (definition, handler) =>
      handlers.set(definition.method, handler as RpcHandler<RpcDefinition>),
  };
  service.register(registrar);
  return handlers;
}

function announceFrom(
  handlers: Map<string, RpcHandler<RpcDefinition>>,
  callerP2pNodeId: string,
  member: ReturnType<typeof memberInfoOf>,
): Promise<unknown> {
  const handler = handlers.get(ANNOUNCE_RPC.method)!;
  return Promise.resolve(
    handler({ member }, {
      remoteNodeId: callerP2pNodeId,
      remoteAddress: null,
      signal: AbortSignal.timeout(5_000),
    }),
  );
}

Deno.test("cluster.announce is refused unless the caller is the member it names, whoever the caller is", async () => {
  const cluster = InProcessCluster.create({ voters: 2 });
  try {
    const leader = await cluster.leader();
    const other = cluster.other(leader.nodeId);
    const handlers = serviceOf(leader);
    const forged = { ...other.info, addresses: ["127.0.0.2:9"] };
    const stranger = memberInfoOf(9).p2pNodeId;
    for (const caller of [stranger, leader.info.p2pNodeId]) {
      await assert.rejects(
        announceFrom(handlers, caller, forged),
        (error) =>
          error instanceof RpcError && error.code === "invalid" &&
          error.message.includes(`names P2P id ${other.info.p2pNodeId} but comes from ${caller}`),
      );
    }
    assert.deepEqual(leader.directory.recordOf(other.nodeId)?.addresses, other.info.addresses);
    await announceFrom(handlers, other.info.p2pNodeId, forged);
    await cluster.leader();
    assert.deepEqual(
      leader.stateMachine.members().find((member) => member.nodeId === other.nodeId)?.info
        ?.addresses,
      ["127.0.0.2:9"],
      "the member itself may announce",
    );
  } finally {
    await cluster.close();
  }
});

Deno.test("cluster.join forwarded by a removed member is refused as not_member, one for another key from a stranger as invalid", async () => {
  const cluster = InProcessCluster.create({ voters: 3 });
  try {
    const leader = await cluster.leader();
    const removed = cluster.other(leader.nodeId);
    // Forced: the leader may not have heard from every member yet, which the quorum check asks.
    await leader.membership.remove(removed.nodeId, {
      force: true,
      signal: AbortSignal.timeout(30_000),
    });
    const join = serviceOf(leader).get(JOIN_RPC.method)!;
    const joiner = memberInfoOf(9);
    const stranger = memberInfoOf(8).p2pNodeId;
    const expected = [[removed.info.p2pNodeId, "not_member"], [stranger, "invalid"]];
    for (const [caller, code] of expected) {
      await assert.rejects(
        Promise.resolve(join({ member: joiner }, {
          remoteNodeId: caller!,
          remoteAddress: null,
          signal: AbortSignal.timeout(5_000),
        })),
        (error) => error instanceof RpcError && error.code === code,
        `caller ${caller}`,
      );
    }
    assert.equal(leader.raft.status().confState.learners.includes(9), false, "nobody was added");
  } finally {
    await cluster.close();
  }
});
