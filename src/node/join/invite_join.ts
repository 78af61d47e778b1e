/**
 * The first step of a join by invite ticket (`--join TICKET`): before the node opens its
 * storage, it reaches a member the ticket lists by that member's key, presents the token
 * (`cluster.join_by_invite`) and is added as a learner by the entry that consumes the
 * ticket. The answer carries the cluster's secret when it has one; the node keeps it in its
 * data dir and starts with it, and from then on restarts like any member. Being a learner
 * already, it asks nothing more: it learns the members the answer names and greets the
 * leader (`ClusterMember.joinedByInvite`).
 *
 * A crash before the node has its first entries is harmless: with a secret the data dir
 * holds it and the next start goes to the ordinary join through the ticket's members, which
 * finds it already added; without one, presenting the ticket again with the same key is
 * answered as a re-join, without using the ticket again.
 *
 * @module
 */

import type { InviteTicket } from "../../bootstrap/invite_ticket.ts";
import { getLogger } from "../../log/logging.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { INVITE_REFUSED, JOIN_BY_INVITE_RPC } from "../../transport/invite_rpcs.ts";
import type { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import { callRpc, RpcError } from "../../transport/rpc.ts";
import { backoffMs } from "../../util/backoff.ts";
import { sleep } from "../../util/sleep.ts";
import { JoinRefusedError, startSeedSearch } from "./joiner.ts";

const log = getLogger(["blixard", "join"]);

/** Deadline of the join request: the leader answers once the entry is applied. */
const CLAIM_TIMEOUT_MS = 10_000;

/** What the cluster answered to the ticket. */
export interface ClaimedInvite {
  clusterId: string | null;
  leaderId: number;
  /** The members as the leader knew them once this node was added, this node among them. */
  members: MemberInfo[];
  /** The cluster's secret, or `null` when it has none. */
  secret: Uint8Array | null;
}

/**
 * Presents `ticket` as `self` until the cluster answers or `joinTimeoutMs` passes.
 * Rejects with `JoinRefusedError` when the ticket is refused (used, expired, revoked,
 * unknown, another cluster's), and with `TicketMembersGoneError` when no member it lists
 * answers.
 */
export async function claimInvite(
  ticket: InviteTicket,
  options: {
    endpoint: P2pEndpoint;
    self: MemberInfo;
    joinTimeoutMs: number;
    signal: AbortSignal;
    /**
     * Called each time the ticket is on its way to the leader, while the answer waits for
     * the entry to commit: the node opens its storage meanwhile. It must not throw.
     */
    whileWaiting?: () => void;
  },
): Promise<ClaimedInvite> {
  const deadlineMs = performance.now() + options.joinTimeoutMs;
  for (let attempt = 0;; attempt++) {
    const remainingMs = Math.floor(deadlineMs - performance.now());
    const seed = await startSeedSearch({
      peers: [],
      endpoint: options.endpoint,
      clusterSecret: null,
      ticket,
      signal: options.signal,
    }, Math.max(1, remainingMs));
    try {
      const answer = await callRpc(seed.connection, JOIN_BY_INVITE_RPC, {
        member: options.self,
        clusterId: ticket.clusterId,
        token: ticket.token,
      }, {
        timeoutMs: Math.max(1, Math.min(CLAIM_TIMEOUT_MS, deadlineMs - performance.now())),
        ...(options.whileWaiting === undefined ? {} : { onSent: options.whileWaiting }),
      });
      log.info(
        "the invite ticket admitted node {nodeId} to cluster {clusterId} as a learner " +
          "(leader {leaderId}){secret}",
        {
          nodeId: options.self.nodeId,
          clusterId: answer.clusterId,
          leaderId: answer.leaderId,
          secret: answer.secret === null ? "" : "; received the cluster secret",
        },
      );
      return {
        clusterId: answer.clusterId,
        leaderId: answer.leaderId,
        members: answer.members,
        secret: answer.secret,
      };
    } catch (error) {
      if (
        error instanceof RpcError && (error.code === INVITE_REFUSED || error.code === "invalid")
      ) {
        throw new JoinRefusedError(
          `--join: ${seed.peer} refused node ${options.self.nodeId}: ${
            error.remoteMessage ?? error.message
          }`,
        );
      }
      if (performance.now() >= deadlineMs) throw error;
      log.warn("presenting the invite ticket to {peer} failed, retrying: {error}", {
        peer: seed.peer,
        error: error instanceof Error ? error.message : String(error),
      });
      await sleep(backoffMs(attempt, { initialMs: 50, maxMs: 1_000 }), options.signal);
    } finally {
      seed.connection.close("invite presented");
    }
  }
}
