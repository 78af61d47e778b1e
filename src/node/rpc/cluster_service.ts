/**
 * `ClusterService`: the node's answers on `blixard/rpc/1` (DESIGN.md sections 5, 6, 4a).
 *
 * Writes and membership changes go to the leader: a follower that receives one from a
 * client or a joiner forwards it to the leader it knows and relays the answer, so callers
 * never need to know who leads. A request that comes from a member (already forwarded
 * once) is not forwarded again: a stale leader hint cannot make a loop. Reads are served
 * here, linearizably, through ReadIndex.
 *
 * @module
 */

import type { z } from "../../util/zod_mini.ts";
import { NO_NODE, type NodeId } from "../../raft/types.ts";
import { encodeCommand } from "../../state_machine/commands.ts";
import type { ApplyResult } from "../../state_machine/apply_result.ts";
import type { KvStateMachine } from "../../state_machine/kv_state_machine.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import {
  ANNOUNCE_RPC,
  COMPARE_AND_SET_RPC,
  DELETE_RPC,
  GET_RPC,
  JOIN_RPC,
  LEAVE_RPC,
  LIST_LIMIT_MAX,
  LIST_RESPONSE_BYTES_MAX,
  LIST_RPC,
  PUT_MANY_RPC,
  PUT_RPC,
  REMOVE_RPC,
  STATUS_RPC,
  type StatusJson,
} from "../../transport/cluster_rpcs.ts";
import {
  type RpcClient,
  type RpcDefinition,
  RpcError,
  type RpcHandler,
  type RpcRequestOf,
  type RpcResponseOf,
  type RpcServer,
} from "../../transport/rpc.ts";
import { ClusterError } from "../replication/cluster_error.ts";
import type { JoinsInFlight } from "../membership/joins_in_flight.ts";
import type { MemberDirectory } from "../membership/member_directory.ts";
import type { MembershipManager } from "../membership/membership_manager.ts";
import type { MembershipRaft } from "../membership/membership_raft.ts";
import type { RaftNodeEvents } from "../replication/raft_node.ts";
import { InviteService } from "./invite_service.ts";
import type { ClusterSecret } from "../../auth/cluster_secret.ts";

/**
 * Deadline of a forwarded request. It stays below the RPC server's own deadline for the
 * request (10 s), so the caller hears the leader's answer or a timeout, not silence; the
 * server's signal, passed along, cuts it shorter when the caller gave less.
 */
const FORWARD_TIMEOUT_MS = 9_000;

/**
 * The Raft node as the service sees it: the membership policy's view, linearizable reads,
 * and word of leader changes. `RaftNode` is one; the simulator's `SimRaft` another, so
 * that the simulator serves joins (and forwards them) with this service.
 */
export interface ServiceRaft extends MembershipRaft {
  /** Runs `read` once this node's state is linearizable (ReadIndex); `RaftNode.read`. */
  read<T>(read: () => T, options?: { signal?: AbortSignal }): Promise<T>;
  /** Subscribes to the node's role and leader changes. */
  on(events: Pick<RaftNodeEvents, "softState">): void;
}

/** What the service needs from the node. */
export interface ClusterServiceOptions {
  nodeId: NodeId;
  raft: ServiceRaft;
  stateMachine: KvStateMachine;
  directory: MemberDirectory;
  membership: MembershipManager;
  /** Calls the leader when forwarding. */
  rpcClient: Pick<RpcClient, "call">;
  status: () => StatusJson;
  /** Leaves the cluster and stops the node (`cluster.leave`). */
  leave: (signal: AbortSignal) => Promise<{ index: number }>;
  /** The joins this node serves as leader, for `/status` `joins` (default: not tracked). */
  joins?: JoinsInFlight;
  /** The cluster secret, handed to joiners that present an invite ticket; `null`: none. */
  clusterSecret?: ClusterSecret | null;
}

/** Registers the cluster and key/value methods on an `RpcServer`. */
export class ClusterService {
  readonly #options: ClusterServiceOptions;
  /**
   * Aborted when the known leader changes: a request forwarded to a leader that is gone
   * would otherwise wait for its whole deadline. The caller then retries (writes carry a
   * session, so a retry is applied once) and reaches the new leader.
   */
  #leaderEpoch = new AbortController();
  readonly #invites: InviteService;

  constructor(options: ClusterServiceOptions) {
    this.#options = options;
    this.#invites = new InviteService({
      ...options,
      clusterSecret: options.clusterSecret ?? null,
      leaderOnly: (definition, handler, leaderOptions) =>
        this.#leaderOnly(definition, handler, leaderOptions),
      guard,
    });
    options.raft.on({
      softState: () => {
        this.#leaderEpoch.abort(
          new ClusterError("no_leader", "the leader changed while the request was forwarded"),
        );
        this.#leaderEpoch = new AbortController();
      },
    });
  }

  /**
   * Registers every method on `server`: an `RpcServer`, or with a cluster secret the
   * `SecretGate`'s guarded view of one, which admits members and authenticated callers only.
   */
  register(server: Pick<RpcServer, "register">): void {
    const { membership, stateMachine } = this.#options;
    server.register(STATUS_RPC, () => this.#options.status());
    server.register(
      JOIN_RPC,
      this.#leaderOnly(JOIN_RPC, async (request, context) => {
        const member = memberInfo(request.member);
        const joins = this.#options.joins;
        joins?.requested(member.nodeId);
        let index: number;
        try {
          ({ index } = await membership.join(member, context.signal));
        } catch (error) {
          joins?.failed(member.nodeId);
          throw error;
        }
        joins?.added(member.nodeId);
        return {
          clusterId: stateMachine.clusterId(),
          leaderId: this.#options.nodeId,
          index,
          members: stateMachine.members().flatMap((entry) =>
            entry.info === null ? [] : [entry.info]
          ),
        };
      }, { callerMustBe: (request) => request.member.p2pNodeId }),
    );
    server.register(
      ANNOUNCE_RPC,
      this.#leaderOnly(ANNOUNCE_RPC, (request, context) => {
        return membership.announce(memberInfo(request.member), context.signal);
      }, {
        // Only a member itself announces its addresses (after a restart), straight to the
        // leader it knows; nobody forwards another's, so no member vouches for one either.
        callerMustBe: (request) => request.member.p2pNodeId,
        membersVouch: false,
      }),
    );
    server.register(
      REMOVE_RPC,
      this.#leaderOnly(REMOVE_RPC, (request, context) => {
        return membership.remove(request.nodeId, { force: request.force, signal: context.signal });
      }),
    );
    server.register(LEAVE_RPC, guard((_request, context) => this.#options.leave(context.signal)));
    this.#registerKv(server);
    this.#invites.register(server);
  }

  /**
   * Registers the methods open to callers that are neither members nor authenticated:
   * `cluster.join_by_invite`, whose invite token is the caller's credential.
   */
  registerOpen(server: Pick<RpcServer, "register">): void {
    this.#invites.registerOpen(server);
  }

  /**
   * Forwards `definition` to the leader; used by the node itself (leave asks the leader to
   * remove it) as well as by the handlers.
   */
  async forwardToLeader<Definition extends RpcDefinition>(
    definition: Definition,
    request: RpcRequestOf<Definition>,
    signal: AbortSignal,
  ): Promise<RpcResponseOf<Definition>> {
    const leaderId = this.#options.raft.softState.leaderId;
    if (leaderId === NO_NODE) {
      throw new ClusterError("no_leader", "no leader is known; retry shortly");
    }
    const leader = this.#options.directory.addressOf(leaderId);
    if (leader === null) {
      throw new ClusterError(
        "no_leader",
        `the address of leader ${leaderId} is not known yet; retry shortly`,
      );
    }
    const epoch = this.#leaderEpoch.signal;
    try {
      return await this.#options.rpcClient.call(leader, definition, request, {
        timeoutMs: FORWARD_TIMEOUT_MS,
        signal: AbortSignal.any([signal, epoch]),
      });
    } catch (error) {
      if (epoch.aborted && !signal.aborted) throw epoch.reason;
      throw error;
    }
  }

  #registerKv(server: Pick<RpcServer, "register">): void {
    const { raft, stateMachine } = this.#options;
    const propose = async (data: Uint8Array, signal: AbortSignal) =>
      kvResult(await raft.propose(data, { signal }));
    server.register(
      PUT_RPC,
      this.#leaderOnly(PUT_RPC, async (request, context) => {
        const { key, value } = request;
        const result = await propose(
          encodeCommand({ type: "put", key, value, request: request.request }),
          context.signal,
        );
        return { index: result.index };
      }),
    );
    server.register(
      PUT_MANY_RPC,
      this.#leaderOnly(PUT_MANY_RPC, async (request, context) => {
        // Proposed together, before any await: one Ready, one fsync for the whole batch.
        const pending = request.items.map((item) =>
          propose(
            encodeCommand({ type: "put", key: item.key, value: item.value, request: item.request }),
            context.signal,
          )
        );
        const settled = await Promise.allSettled(pending);
        return {
          results: settled.map((outcome) =>
            outcome.status === "fulfilled"
              ? { index: outcome.value.index }
              : { error: itemError(outcome.reason) }
          ),
        };
      }),
    );
    server.register(
      DELETE_RPC,
      this.#leaderOnly(DELETE_RPC, async (request, context) => {
        const result = await propose(
          encodeCommand({ type: "delete", key: request.key, request: request.request }),
          context.signal,
        );
        if (result.type !== "delete") throw unexpected(result);
        return { index: result.index, existed: result.existed };
      }),
    );
    server.register(
      COMPARE_AND_SET_RPC,
      this.#leaderOnly(COMPARE_AND_SET_RPC, async (request, context) => {
        const { key, expected, value } = request;
        const command = {
          type: "compareAndSet" as const,
          key,
          expected,
          value,
          request: request.request,
        };
        const result = await propose(encodeCommand(command), context.signal);
        if (result.type !== "compareAndSet") throw unexpected(result);
        return { index: result.index, succeeded: result.succeeded, current: result.current };
      }),
    );
    server.register(
      GET_RPC,
      guard((request, context) =>
        raft.read(
          () => ({
            value: stateMachine.get(request.key),
            appliedIndex: stateMachine.appliedIndex(),
          }),
          {
            signal: context.signal,
          },
        )
      ),
    );
    server.register(
      LIST_RPC,
      guard((request, context) =>
        raft.read(() => listPage(stateMachine, request), { signal: context.signal })
      ),
    );
  }

  /**
   * Serves `handler` on the leader; elsewhere forwards the request to the leader, unless
   * the caller is itself a member (the request was already forwarded once).
   * `callerMustBe` names the P2P id the caller must have (a joiner joins as itself); a
   * member forwarding the request vouches for it unless `membersVouch` is `false`.
   */
  #leaderOnly<Definition extends RpcDefinition>(
    definition: Definition,
    handler: RpcHandler<Definition>,
    options: {
      callerMustBe?: (request: z.output<Definition["request"]>) => string;
      membersVouch?: boolean;
    } = {},
  ): RpcHandler<Definition> {
    return guard(async (request, context) => {
      // A member forwarding a request vouches for its origin (it checked the caller itself).
      const fromMember = this.#options.directory.memberIdOf(context.remoteNodeId) !== null;
      const vouched = fromMember && options.membersVouch !== false;
      const expectedCaller = options.callerMustBe?.(request);
      if (!vouched && expectedCaller !== undefined && expectedCaller !== context.remoteNodeId) {
        // A removed member that has not found out yet still forwards its callers' requests:
        // the joiner behind it did nothing wrong and must not hear a final `invalid` (found by
        // the simulator, seeds 1299 and 1484: the joiner gave up, though its learner was added).
        if (this.#options.directory.isRevoked(context.remoteNodeId)) {
          throw new ClusterError(
            "not_member",
            `the request was forwarded by ${context.remoteNodeId}, which was removed from ` +
              "this cluster; ask another member",
          );
        }
        throw new ClusterError(
          "invalid",
          `the request names P2P id ${expectedCaller} but comes from ${context.remoteNodeId}`,
        );
      }
      if (this.#options.raft.softState.role === "leader") return await handler(request, context);
      if (fromMember) {
        const leaderId = this.#options.raft.softState.leaderId;
        throw new ClusterError(
          "not_leader",
          `this node is not the leader (leader: ${leaderId || "unknown"})`,
        );
      }
      // The leader's answer was validated against the same schema: relay it as it is.
      const answer = await this.forwardToLeader(
        definition,
        request as RpcRequestOf<Definition>,
        context.signal,
      );
      return answer as z.input<Definition["response"]>;
    });
  }
}

/** The `MemberInfo` of a wire member record. */
function memberInfo(member: MemberInfo): MemberInfo {
  return {
    nodeId: member.nodeId,
    p2pNodeId: member.p2pNodeId,
    addresses: [...member.addresses],
    relayUrl: member.relayUrl,
  };
}

function listPage(
  stateMachine: KvStateMachine,
  request: { prefix: Uint8Array; startAfter: Uint8Array | null; limit: number },
) {
  // One more than asked tells whether more follow, within the state machine's own limit.
  const limit = Math.min(request.limit + 1, LIST_LIMIT_MAX);
  const pairs = stateMachine.list(
    request.prefix,
    request.startAfter === null ? { limit } : { limit, startAfter: request.startAfter },
  );
  const items: { key: Uint8Array; value: Uint8Array }[] = [];
  let bytes = 0;
  for (const pair of pairs.slice(0, request.limit)) {
    bytes += pair.key.length + pair.value.length;
    if (items.length > 0 && bytes > LIST_RESPONSE_BYTES_MAX) break;
    items.push(pair);
  }
  const more = items.length < pairs.length || (pairs.length === limit && limit === request.limit);
  return { items, more, appliedIndex: stateMachine.appliedIndex() };
}

/** The key/value result of a write, or the error the state machine gave. */
function kvResult(result: ApplyResult): ApplyResult {
  if (result.type === "error") throw new ClusterError("invalid", result.error);
  return result;
}

function unexpected(result: ApplyResult): ClusterError {
  return new ClusterError("invalid", `unexpected result of type ${result.type}`);
}

/** One item's failure inside a batch answer, coded like a whole call's failure would be. */
function itemError(error: unknown): { code: string; message: string } {
  if (error instanceof ClusterError) return { code: error.code, message: error.message };
  return { code: "internal", message: "the write failed on the leader" };
}

/** Turns `ClusterError`s and aborts into `RpcError`s with the matching code. */
function guard<Definition extends RpcDefinition>(
  handler: RpcHandler<Definition>,
): RpcHandler<Definition> {
  return async (request, context) => {
    try {
      return await handler(request, context);
    } catch (error) {
      // A forwarded call's failure: pass on the leader's own words, not our call's description.
      if (error instanceof RpcError) {
        throw new RpcError(error.code, error.remoteMessage ?? error.message, {
          retryAfterMs: error.retryAfterMs,
        });
      }
      if (error instanceof ClusterError) {
        throw new RpcError(error.code, error.message, { retryAfterMs: error.retryAfterMs });
      }
      if (context.signal.aborted) throw new RpcError("timeout", "the request's deadline passed");
      throw error;
    }
  };
}
