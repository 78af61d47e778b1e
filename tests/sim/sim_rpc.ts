/**
 * `SimRpc`: `blixard/rpc/1` between simulated nodes, so that the node's own RPC service
 * (`ClusterService`: `cluster.join` and `cluster.remove` forwarded by a follower to the
 * leader, `cluster.status` for the `RemovalWatch`) runs in the simulator as it runs in
 * production. It stands where `RpcClient` and `RpcServer` stand: a caller gets `call`
 * (`Pick<RpcClient, "call">`), a node registers its handlers as on an `RpcServer`.
 *
 * Requests and answers travel on the simulated clock and respect the network's partitions:
 *
 * - each leg (request, answer) takes the network's current delay; it is never dropped or
 *   duplicated, since the stream under a call retransmits (QUIC), but a link cut while it
 *   is on its way loses it, and the caller then hears nothing before its deadline;
 * - a call over a link that is cut when it starts, or to a node that is down, fails at once
 *   with `unavailable`, as a connect does; a node that stops while it handles a call closes
 *   the connection, and the caller hears `unavailable`;
 * - both ends validate against the method's schemas, as the real ones do: the server the
 *   request, the client the answer; the server's deadline is the production default.
 *
 * Every timer is on the `SimClock`, so a seed replays exactly.
 *
 * @module
 */

import { z } from "zod";
import { BootstrapInfoSchema } from "../../src/bootstrap/bootstrap_info.ts";
import type { NodeId } from "../../src/raft/types.ts";
import {
  defineRpc,
  RPC_REQUEST_TIMEOUT_MS_DEFAULT,
  type RpcCallOptions,
  type RpcClient,
  type RpcDefinition,
  RpcError,
  type RpcHandler,
  type RpcRequestOf,
  type RpcResponseOf,
  type RpcServer,
} from "../../src/transport/rpc.ts";
import type { PeerAddress } from "../../src/transport/p2p_endpoint.ts";
import { JOIN_RPC, STATUS_RPC } from "../../src/transport/cluster_rpcs.ts";
import { timeoutSignal } from "../../src/util/scheduler.ts";
import { abortReason } from "../../src/util/sleep.ts";
import { withDeadline } from "../../src/node/replication/proposal_tracker.ts";
import { MS_PER_UNIT, type ScopedScheduler } from "./sim_clock.ts";
import type { SimRandom } from "./sim_random.ts";

/**
 * `GET /bootstrap` (HTTP on the bind port + 1000 in production) as a call on the simulated
 * network, so that a node that is down or cut off does not answer it: the node answers
 * what its route answers.
 */
export const SIM_BOOTSTRAP_RPC = defineRpc({
  method: "sim.bootstrap",
  request: () => z.strictObject({}),
  response: () => BootstrapInfoSchema,
});

/** The links and delays the calls share with the nodes' Raft messages (`SimNetwork`). */
export interface RpcLinks {
  isBlocked(from: NodeId, to: NodeId): boolean;
  readonly faults: { delayMin: number; delayMax: number };
}

/** A caller: a node, or the operator (`OPERATOR_ID`, which no partition cuts off). */
export interface RpcCaller {
  nodeId: NodeId;
  p2pNodeId: string;
}

/** The node id of the operator's own machine: no node has it, so no partition cuts it. */
export const OPERATOR_ID: NodeId = 0;

/** Counts of calls, for reports. */
export interface RpcStatistics {
  calls: number;
  /** Calls of `cluster.join`, first-hand or forwarded. */
  joinCalls: number;
  /** Calls of `cluster.status` (the removal watch's). */
  statusCalls: number;
  answered: number;
  /** Failed with an error from the server's handler or its checks. */
  refused: number;
  /** Failed before any handler ran: a cut link, a node down. */
  unavailable: number;
  /** Lost on a link cut while on the way: the caller waits out its deadline. */
  lost: number;
}

interface Server {
  nodeId: NodeId;
  handlers: Map<string, { definition: RpcDefinition; handler: RpcHandler<RpcDefinition> }>;
  /** Aborts when the node stops: its connections close. */
  stopped: AbortSignal;
  scheduler: ScopedScheduler;
}

/** `blixard/rpc/1` on the simulated network. */
export class SimRpc {
  readonly #links: RpcLinks;
  readonly #random: SimRandom;
  readonly #scheduler: ScopedScheduler;
  /** Servers by P2P id; a restarted node replaces its former incarnation. */
  readonly #servers = new Map<string, Server>();
  readonly statistics: RpcStatistics = {
    calls: 0,
    joinCalls: 0,
    statusCalls: 0,
    answered: 0,
    refused: 0,
    unavailable: 0,
    lost: 0,
  };

  /** `scheduler` carries the legs of every call (it outlives every node). */
  constructor(options: { links: RpcLinks; random: SimRandom; scheduler: ScopedScheduler }) {
    this.#links = options.links;
    this.#random = options.random;
    this.#scheduler = options.scheduler;
  }

  /**
   * The server of node `nodeId` (P2P id `p2pNodeId`) until `stopped` aborts: handlers
   * register on it as on an `RpcServer`, and run with deadlines on `scheduler`.
   */
  serve(
    self: RpcCaller,
    options: { stopped: AbortSignal; scheduler: ScopedScheduler },
  ): Pick<RpcServer, "register"> {
    const server: Server = { nodeId: self.nodeId, handlers: new Map(), ...options };
    this.#servers.set(self.p2pNodeId, server);
    return {
      register: <Definition extends RpcDefinition>(
        definition: Definition,
        handler: RpcHandler<Definition>,
      ) => {
        server.handlers.set(definition.method, {
          definition,
          handler: handler as unknown as RpcHandler<RpcDefinition>,
        });
      },
    };
  }

  /** Calls made as `caller`. */
  client(caller: RpcCaller): Pick<RpcClient, "call"> {
    return {
      call: <Definition extends RpcDefinition>(
        peer: PeerAddress,
        definition: Definition,
        request: RpcRequestOf<Definition>,
        options: RpcCallOptions,
      ) => this.#call(caller, peer, definition, request, options),
    };
  }

  async #call<Definition extends RpcDefinition>(
    caller: RpcCaller,
    peer: PeerAddress,
    definition: Definition,
    request: RpcRequestOf<Definition>,
    options: RpcCallOptions,
  ): Promise<RpcResponseOf<Definition>> {
    this.statistics.calls += 1;
    if (definition.method === JOIN_RPC.method) this.statistics.joinCalls += 1;
    if (definition.method === STATUS_RPC.method) this.statistics.statusCalls += 1;
    const description = `${definition.method} to ${peer.p2pNodeId}`;
    const deadline = timeoutSignal(this.#scheduler, options.timeoutMs);
    const cut = options.signal === undefined
      ? deadline.signal
      : AbortSignal.any([deadline.signal, options.signal]);
    const exchange = new Promise<Frame>((resolve, reject) => {
      const server = this.#servers.get(peer.p2pNodeId);
      const unavailable = (why: string) => {
        this.statistics.unavailable += 1;
        reject(new RpcError("unavailable", `${description}: ${why}`));
      };
      if (server === undefined || server.stopped.aborted) return unavailable("the peer is down");
      if (this.#links.isBlocked(caller.nodeId, server.nodeId)) {
        return unavailable("the link is cut");
      }
      this.#leg(caller.nodeId, server.nodeId, () => {
        if (server.stopped.aborted) return unavailable("the connection closed");
        void this.#serve(server, caller, definition.method, structuredClone(request)).then(
          (answer) => {
            if (answer === "closed") return unavailable("the connection closed");
            this.#leg(server.nodeId, caller.nodeId, () => resolve(structuredClone(answer)));
          },
        );
      });
    });
    // A call given up before its exchange settles must not leave the rejection unhandled.
    exchange.catch(() => {});
    try {
      const frame = await withDeadline(
        exchange,
        cut,
        () =>
          deadline.signal.aborted
            ? new RpcError(
              "deadline_exceeded",
              `${description}: no answer within ${options.timeoutMs} ms`,
            )
            : abortReason(options.signal),
      );
      return answerOf(definition, frame, description, this.statistics);
    } finally {
      deadline.cancel();
    }
  }

  /**
   * Runs the handler of `method` on `server` as the production server does: the request
   * checked against its schema, a deadline, errors turned into the codes a caller gets.
   * Resolves with the answer frame, or `closed` when the node stopped meanwhile.
   */
  async #serve(
    server: Server,
    caller: RpcCaller,
    method: string,
    request: unknown,
  ): Promise<Frame | "closed"> {
    const method_ = server.handlers.get(method);
    if (method_ === undefined) return { ok: false, code: "unknown_method", message: method };
    const parsed = z.safeParse(method_.definition.request, request);
    if (!parsed.success) {
      return { ok: false, code: "invalid_request", message: parsed.error.message };
    }
    const deadline = timeoutSignal(server.scheduler, RPC_REQUEST_TIMEOUT_MS_DEFAULT);
    const signal = AbortSignal.any([deadline.signal, server.stopped]);
    try {
      const handled = (async () =>
        await method_.handler(parsed.data, {
          remoteNodeId: caller.p2pNodeId,
          remoteAddress: null,
          signal,
        }))();
      handled.catch(() => {});
      const body = await withDeadline(handled, signal, () => abortReason(signal));
      const checked = z.safeParse(method_.definition.response, body);
      if (!checked.success) return { ok: false, code: "internal", message: checked.error.message };
      return { ok: true, body: checked.data };
    } catch (error) {
      if (server.stopped.aborted) return "closed";
      if (error instanceof RpcError) {
        return {
          ok: false,
          code: error.code,
          message: error.message,
          retryAfterMs: error.retryAfterMs,
        };
      }
      if (deadline.signal.aborted) {
        return { ok: false, code: "deadline_exceeded", message: "the server's deadline passed" };
      }
      return { ok: false, code: "internal", message: String(error) };
    } finally {
      deadline.cancel();
    }
  }

  /** One way over the link from `from` to `to`: after the network's delay, unless cut. */
  #leg(from: NodeId, to: NodeId, arrive: () => void): void {
    const { delayMin, delayMax } = this.#links.faults;
    const units = this.#random.integer(delayMin, delayMax);
    this.#scheduler.after(units * MS_PER_UNIT, () => {
      if (this.#links.isBlocked(from, to)) {
        this.statistics.lost += 1;
        return;
      }
      arrive();
    });
  }
}

/** An answer on its way back: the body, or the error the server sent. */
type Frame =
  | { ok: true; body: unknown }
  | { ok: false; code: string; message: string; retryAfterMs?: number | null };

/** The caller's side of an answer: the body checked against its schema, or the error. */
function answerOf<Definition extends RpcDefinition>(
  definition: Definition,
  frame: Frame,
  description: string,
  statistics: RpcStatistics,
): RpcResponseOf<Definition> {
  if (!frame.ok) {
    statistics.refused += 1;
    throw new RpcError(frame.code, `${description}: ${frame.code}: ${frame.message}`, {
      remoteMessage: frame.message,
      retryAfterMs: frame.retryAfterMs ?? null,
    });
  }
  const body = z.safeParse(definition.response, frame.body);
  if (!body.success) {
    statistics.refused += 1;
    throw new RpcError("invalid_response", `${description}: ${body.error.message}`);
  }
  statistics.answered += 1;
  return body.data as RpcResponseOf<Definition>;
}
