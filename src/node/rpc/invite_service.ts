/**
 * `InviteService`: the node's answers to the invite methods (`invite_rpcs.ts`).
 *
 * The leader creates a ticket: 32 random bytes of token, of which only the SHA-256 hash is
 * proposed (`createInvite`); the token leaves only in the answer to the operator, inside
 * the ticket, over the encrypted connection. A joiner presents the token; the leader
 * hashes it and adds the learner by `MembershipManager.joinByInvite`, which consumes the
 * ticket in the same entry. With a cluster secret, the answer hands the joiner the secret:
 * its connection reached the key the ticket named, which the QUIC handshake proved.
 *
 * @module
 */

import type { ClusterSecret } from "../../auth/cluster_secret.ts";
import {
  encodeInviteTicket,
  newToken,
  TICKET_MEMBERS_MAX,
  tokenHashOf,
} from "../../bootstrap/invite_ticket.ts";
import type { NodeId } from "../../raft/types.ts";
import { encodeCommand } from "../../state_machine/commands.ts";
import type { KvStateMachine } from "../../state_machine/kv_state_machine.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import {
  INVITE_RPC,
  INVITES_RPC,
  JOIN_BY_INVITE_RPC,
  REVOKE_INVITE_RPC,
} from "../../transport/invite_rpcs.ts";
import type { RpcDefinition, RpcHandler, RpcServer } from "../../transport/rpc.ts";
import type { z } from "../../util/zod_mini.ts";
import { ClusterError } from "../replication/cluster_error.ts";
import type { JoinsInFlight } from "../membership/joins_in_flight.ts";
import type { MembershipManager } from "../membership/membership_manager.ts";
import type { ServiceRaft } from "./cluster_service.ts";

/** Serves a handler on the leader, forwarding from elsewhere (`ClusterService.leaderOnly`). */
export type LeaderOnly = <Definition extends RpcDefinition>(
  definition: Definition,
  handler: RpcHandler<Definition>,
  options?: { callerMustBe?: (request: z.output<Definition["request"]>) => string },
) => RpcHandler<Definition>;

/** What the invite methods need from the node. */
export interface InviteServiceOptions {
  nodeId: NodeId;
  raft: ServiceRaft;
  stateMachine: KvStateMachine;
  membership: MembershipManager;
  /** The cluster secret, handed to invited joiners; `null` for none. */
  clusterSecret: ClusterSecret | null;
  leaderOnly: LeaderOnly;
  /** Guards a handler like the other cluster methods (errors to RPC codes). */
  guard: <Definition extends RpcDefinition>(
    handler: RpcHandler<Definition>,
  ) => RpcHandler<Definition>;
  joins?: JoinsInFlight;
}

/** Registers the invite methods. */
export class InviteService {
  readonly #options: InviteServiceOptions;

  constructor(options: InviteServiceOptions) {
    this.#options = options;
  }

  /** The operator's methods, on the gate's guarded view when there is a secret. */
  register(server: Pick<RpcServer, "register">): void {
    const { leaderOnly, guard, raft, stateMachine } = this.#options;
    server.register(
      INVITE_RPC,
      leaderOnly(INVITE_RPC, (request, context) => this.#create(request, context.signal)),
    );
    server.register(
      INVITES_RPC,
      guard((_request, context) =>
        raft.read(() => ({ invites: stateMachine.invites(), nowMs: Date.now() }), {
          signal: context.signal,
        })
      ),
    );
    server.register(
      REVOKE_INVITE_RPC,
      leaderOnly(
        REVOKE_INVITE_RPC,
        (request, context) => this.#revoke(request.hashPrefix, context.signal),
      ),
    );
  }

  /** The joiner's method: open to callers that hold no secret, the token being their credential. */
  registerOpen(server: Pick<RpcServer, "register">): void {
    const { leaderOnly, membership, stateMachine, clusterSecret } = this.#options;
    server.register(
      JOIN_BY_INVITE_RPC,
      leaderOnly(JOIN_BY_INVITE_RPC, async (request, context) => {
        const clusterId = stateMachine.clusterId();
        if (clusterId !== request.clusterId) {
          throw new ClusterError(
            "invite_refused",
            `the ticket is for cluster ${request.clusterId}, this is cluster ${clusterId}`,
          );
        }
        const member = request.member;
        const joins = this.#options.joins;
        joins?.requested(member.nodeId);
        let index: number;
        try {
          ({ index } = await membership.joinByInvite(member, {
            tokenHash: tokenHashOf(request.token),
            signal: context.signal,
          }));
        } catch (error) {
          joins?.failed(member.nodeId);
          throw error;
        }
        joins?.added(member.nodeId);
        return {
          clusterId,
          leaderId: this.#options.nodeId,
          index,
          members: memberInfos(stateMachine),
          secret: clusterSecret?.shareableBytes() ?? null,
        };
      }, { callerMustBe: (request) => request.member.p2pNodeId }),
    );
  }

  async #create(
    request: z.output<typeof INVITE_RPC.request>,
    signal: AbortSignal,
  ) {
    const { raft, stateMachine } = this.#options;
    const clusterId = stateMachine.clusterId();
    if (clusterId === null) {
      throw new ClusterError("no_leader", "the cluster has no id yet; retry shortly");
    }
    const token = newToken();
    const tokenHash = tokenHashOf(token);
    const nowMs = Date.now();
    const expiresAtMs = nowMs + request.ttlMs;
    // Built before the proposal: a ticket that cannot be made must not leave a record.
    const ticket = encodeInviteTicket({
      clusterId,
      expiresAtMs,
      token,
      members: this.#ticketMembers(),
    });
    const result = await raft.propose(
      encodeCommand({
        type: "createInvite",
        tokenHash,
        role: request.role,
        expiresAtMs,
        uses: request.uses,
        createdBy: request.createdBy,
        nowMs,
      }),
      { signal },
    );
    if (result.type === "error") throw new ClusterError("invalid", result.error);
    return { ticket, tokenHash, expiresAtMs, index: result.index };
  }

  async #revoke(hashPrefix: string, signal: AbortSignal) {
    const matches = this.#options.stateMachine.invites().filter((record) =>
      record.state === "active" && record.tokenHash.startsWith(hashPrefix)
    );
    if (matches.length !== 1) {
      throw new ClusterError(
        "invalid",
        matches.length === 0
          ? `no outstanding invite's hash starts with ${hashPrefix} (see blixard cluster invites)`
          : `${matches.length} outstanding invites' hashes start with ${hashPrefix}: give more digits`,
      );
    }
    const tokenHash = matches[0]!.tokenHash;
    const result = await this.#options.raft.propose(
      encodeCommand({ type: "revokeInvite", tokenHash }),
      { signal },
    );
    if (result.type === "error") throw new ClusterError("invalid", result.error);
    return { tokenHash, index: result.index };
  }

  /** This node first (it leads now), then the other voters, then learners. */
  #ticketMembers(): MemberInfo[] {
    const members = this.#options.stateMachine.members();
    const rank = (member: (typeof members)[number]) =>
      member.nodeId === this.#options.nodeId ? 0 : member.role === "voter" ? 1 : 2;
    return [...members].sort((a, b) => rank(a) - rank(b))
      .flatMap((member) => member.info === null ? [] : [member.info])
      .slice(0, TICKET_MEMBERS_MAX * 2);
  }
}

/** Every member record the state machine holds. */
function memberInfos(stateMachine: KvStateMachine): MemberInfo[] {
  return stateMachine.members().flatMap((entry) => entry.info === null ? [] : [entry.info]);
}
