/**
 * `cluster.leave`, apart from the process that stops afterwards, so that the simulator's
 * nodes leave by it too (`tests/sim/sim_node.ts`): the last voter cannot leave; a leader
 * hands leadership over first; then the leader (itself, or the one it forwards to) removes
 * this node. The caller stops the node `LEAVE_STOP_DELAY_MS` after the answer.
 *
 * @module
 */

import type { NodeId } from "../../raft/types.ts";
import { REMOVE_RPC } from "../../transport/cluster_rpcs.ts";
import type { RpcRequestOf, RpcResponseOf } from "../../transport/rpc.ts";
import { ClusterError } from "../replication/cluster_error.ts";
import type { MembershipManager } from "./membership_manager.ts";
import type { MembershipRaft } from "./membership_raft.ts";

/** Lets the answer to `cluster.leave` reach the caller before the node stops. */
export const LEAVE_STOP_DELAY_MS = 100;

/** What leaving needs of the node. */
export interface LeaveOptions {
  nodeId: NodeId;
  raft: Pick<MembershipRaft, "status" | "softState">;
  membership: Pick<MembershipManager, "remove">;
  /** Hands leadership over when this node leads (`handOverLeadership`). */
  handOver(): Promise<void>;
  /** Sends `cluster.remove` to the leader (`ClusterService.forwardToLeader`). */
  forwardRemove(
    request: RpcRequestOf<typeof REMOVE_RPC>,
    signal: AbortSignal,
  ): Promise<RpcResponseOf<typeof REMOVE_RPC>>;
  signal: AbortSignal;
}

/** Has the leader remove this node; resolves with the removal's index once committed. */
export async function leaveCluster(options: LeaveOptions): Promise<{ index: number }> {
  const { nodeId, raft, signal } = options;
  const { voters } = raft.status().confState;
  if (voters.length === 1 && voters[0] === nodeId) {
    throw new ClusterError(
      "invalid",
      `node ${nodeId} is the last voter; stop it instead of leaving`,
    );
  }
  await options.handOver();
  const { index } = raft.softState.role === "leader"
    ? await options.membership.remove(nodeId, { force: false, signal })
    : await options.forwardRemove({ nodeId, force: false }, signal);
  return { index };
}
