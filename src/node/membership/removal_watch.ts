/**
 * `RemovalWatch`: how a node finds out that the cluster removed it (DESIGN.md section 6).
 *
 * Members refuse a removed node's key as soon as they apply its removal, so the entry
 * that removes it usually never reaches it. Left alone, a node removed while it ran (or while it
 * was down, then restarted from its data dir) would campaign forever, unseen, its
 * `/status` still listing itself as a voter. So while a node that believes it is a member
 * has no leader, it asks the members it knows for their status over `blixard/rpc/1`
 * (any key may ask; with a cluster secret, a key the members no longer know proves the
 * secret first, which the node's `AuthenticatingRpcClient` does) and concludes that it
 * was removed when one of them has applied entries beyond this node's whole log and does
 * not list it, or lists its id with another key; or, with a secret, when a member refuses
 * its key as revoked. The node then says so in its log and stops.
 *
 * Only state committed past everything this node holds counts: a member that lags behind
 * may not know yet that this node was added. The one exception is a member whose
 * membership was forced (`--force-new-cluster`): it names the keys it removed, and a node
 * that finds its own key there is out, however long its log.
 *
 * A node that restarts also asks during its first `RESTART_CHECK_MS`, leader or not: the
 * old members of a forced cluster that come back together can elect a leader among
 * themselves, and must still find out.
 *
 * A node whose own join is still running does not ask. Its log may name it in an addition
 * that was never committed (the leader that appended it crashed, and the surviving log does
 * not name it); the members then rightly do not list it, yet it is not removed but not added
 * yet, and its join request, still in flight, may add it a moment later. Stopping it then
 * would leave a member in the configuration with no node behind it (simulator seed 21884).
 * The join ends once the node applies its own addition, and the watch takes over.
 *
 * @module
 */

import { isMember } from "../../raft/membership.ts";
import type { RaftStatus } from "../../raft/raft_core.ts";
import { type ConfState, NO_NODE, type NodeId } from "../../raft/types.ts";
import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import type { PeerAddress } from "../../transport/p2p_endpoint.ts";
import { RpcError } from "../../transport/rpc.ts";
import { REVOKED } from "../../auth/auth_rpcs.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { membersOfStatus } from "./member_directory.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../../util/scheduler.ts";

/** How often a node without a leader asks the others whether it is still a member. */
export const REMOVAL_CHECK_INTERVAL_MS = 1_000;
/**
 * Checks in a row that must find no leader before the members are asked: an ordinary
 * election ends well within one interval and costs no RPCs.
 */
export const LEADERLESS_CHECKS_MIN = 2;
/** How long after a restart a node asks the members even while it has a leader. */
export const RESTART_CHECK_MS = 10_000;
/** Deadline of one status request. */
const STATUS_TIMEOUT_MS = 1_000;

/** What this node knows of itself when it has no leader. */
export interface SelfView {
  nodeId: NodeId;
  p2pNodeId: string;
  clusterId: string | null;
  /** The index of the last entry in this node's log. */
  lastIndex: number;
}

/**
 * Why `peer`'s status shows that this node is no longer a member, or `null` when it does
 * not (another cluster, a peer that is not ahead of this node, or one that lists it).
 */
export function removalEvidence(peer: StatusJson, self: SelfView): string | null {
  if (peer.cluster_id === null || peer.cluster_id !== self.clusterId) return null;
  const forced = peer.forced;
  if (forced?.removed.some((member) => member.p2p_node_id === self.p2pNodeId)) {
    return `node ${peer.node_id} was forced to a new membership at ${forced.at} ` +
      `(from index ${forced.from_index}) that removed this node`;
  }
  if (peer.applied_index <= self.lastIndex) return null;
  const record = peer.members.find((member) => member.node_id === self.nodeId);
  const where = `node ${peer.node_id} (applied index ${peer.applied_index}, ` +
    `this node's log ends at ${self.lastIndex})`;
  if (record === undefined) return `${where} does not list node ${self.nodeId}`;
  if (record.p2p_node_id !== null && record.p2p_node_id !== self.p2pNodeId) {
    return `${where} lists node ${self.nodeId} with another P2P id, ${record.p2p_node_id}`;
  }
  return null;
}

/**
 * Why `peer`'s refusal shows that this node was removed, or `null` when it does not. With
 * a cluster secret the members refuse a removed member's key as `revoked` from the moment
 * they apply its removal, so the status that `removalEvidence` reads never comes; the
 * refusal itself says it, from a member this node knows by its key.
 */
export function revocationEvidence(refusal: unknown, peer: PeerAddress): string | null {
  if (!(refusal instanceof RpcError) || refusal.code !== REVOKED) return null;
  return `member ${peer.p2pNodeId} refuses this node's key as revoked`;
}

/** Options of a {@linkcode RemovalWatch}. */
export interface RemovalWatchOptions {
  /** The clock the checks run on; the system's by default. */
  scheduler?: Scheduler;
  /** This node, or `null` when there is nothing to check (it has a leader, or is no member). */
  self: () => SelfView | null;
  /** The other members this node knows, to ask. */
  peers: () => PeerAddress[];
  /** Asks `peer` for its `/status`; rejects when it cannot. */
  askStatus: (peer: PeerAddress, options: { timeoutMs: number }) => Promise<StatusJson>;
  /** Called once, with the evidence, when this node was removed. */
  onRemoved: (evidence: string) => void;
  /**
   * Told of each answer that shows no removal, to learn from: a member ahead of this node
   * lists the members that were added while this node was away.
   */
  onStatus?: (peer: StatusJson, self: SelfView) => void;
}

/** Watches for this node's removal while it has no leader. */
export class RemovalWatch {
  readonly #options: RemovalWatchOptions;
  #stopChecks: (() => void) | null = null;
  #leaderlessChecks = 0;
  #asking = false;
  #removed = false;

  constructor(options: RemovalWatchOptions) {
    this.#options = options;
  }

  /** Checks every `REMOVAL_CHECK_INTERVAL_MS` until `stop()`. */
  start(): void {
    this.#stopChecks ??= (this.#options.scheduler ?? SYSTEM_SCHEDULER).every(
      REMOVAL_CHECK_INTERVAL_MS,
      () => void this.check(),
    );
  }

  /** Stops checking. */
  stop(): void {
    this.#stopChecks?.();
    this.#stopChecks = null;
  }

  /**
   * One check: after `LEADERLESS_CHECKS_MIN` checks in a row without a leader, asks every
   * known member and reports the first evidence of removal. Resolves with it, or `null`.
   */
  async check(): Promise<string | null> {
    const self = this.#options.self();
    this.#leaderlessChecks = self === null ? 0 : this.#leaderlessChecks + 1;
    if (self === null || this.#leaderlessChecks < LEADERLESS_CHECKS_MIN) return null;
    if (this.#asking || this.#removed) return null;
    this.#asking = true;
    try {
      const peers = this.#options.peers();
      const answers = await Promise.allSettled(
        peers.map((peer) => this.#options.askStatus(peer, { timeoutMs: STATUS_TIMEOUT_MS })),
      );
      for (const [i, answer] of answers.entries()) {
        const evidence = answer.status === "fulfilled"
          ? removalEvidence(answer.value, self)
          : revocationEvidence(answer.reason, peers[i]!);
        if (evidence === null) {
          if (answer.status === "fulfilled") this.#options.onStatus?.(answer.value, self);
          continue;
        }
        this.#removed = true;
        this.stop();
        this.#options.onRemoved(evidence);
        return evidence;
      }
      return null;
    } finally {
      this.#asking = false;
    }
  }
}

/** What a member's {@linkcode RemovalWatch} reads of its node (`watchMemberForRemoval`). */
export interface MemberRemovalWatchOptions
  extends Pick<RemovalWatchOptions, "askStatus" | "onRemoved"> {
  /**
   * Told of the members that a member ahead of this node (same cluster, applied beyond this
   * node's log) lists, with its applied index: `MemberDirectory.rememberVouched`.
   */
  learnMembers?: (members: MemberInfo[], appliedIndex: number) => void;
  nodeId: NodeId;
  p2pNodeId: string;
  scheduler: Scheduler;
  /** The node's Raft: its leader, configuration and last index. */
  raft: { status(): RaftStatus };
  /** The configuration this node applied (the committed one, as far as it knows). */
  appliedConfState: () => ConfState;
  /** The cluster id this node applied, or `null` before it applied one. */
  clusterId: () => string | null;
  /** Where each member is. */
  addressOf: (nodeId: NodeId) => PeerAddress | null;
  /** The node restarted from its data dir: it asks for `RESTART_CHECK_MS` even with a leader. */
  restarted: boolean;
  /** True while the node's own join runs: it is not a member yet, whatever its log says. */
  joining: () => boolean;
}

/**
 * The removal watch of a member node, as `ClusterMember` and the simulator's nodes run it:
 * while the node is a member of its own latest or its applied configuration, its join is
 * not running, and it has no leader (or is in its first `RESTART_CHECK_MS` after a restart),
 * it asks the other members it knows. The applied one too: a node whose log holds its own
 * removal, not yet committed when its leader went, neither campaigns (it is no voter of its
 * latest configuration) nor hears from the members, who do not count it any more; only the
 * watch can tell it that the removal committed.
 */
export function watchMemberForRemoval(options: MemberRemovalWatchOptions): RemovalWatch {
  const { nodeId, scheduler, raft } = options;
  const askWithLeaderUntilMs = options.restarted ? scheduler.now() + RESTART_CHECK_MS : 0;
  return new RemovalWatch({
    scheduler,
    self: () => {
      const status = raft.status();
      const asking = status.leaderId === NO_NODE || scheduler.now() < askWithLeaderUntilMs;
      if (!asking || options.joining()) return null;
      if (!isMember(status.confState, nodeId) && !isMember(options.appliedConfState(), nodeId)) {
        return null;
      }
      return {
        nodeId,
        p2pNodeId: options.p2pNodeId,
        clusterId: options.clusterId(),
        lastIndex: status.lastIndex,
      };
    },
    peers: () => {
      const latest = raft.status().confState;
      const applied = options.appliedConfState();
      const ids = new Set([
        ...latest.voters,
        ...latest.learners,
        ...applied.voters,
        ...applied.learners,
      ]);
      ids.delete(nodeId);
      return [...ids].flatMap((id) => options.addressOf(id) ?? []);
    },
    askStatus: options.askStatus,
    onRemoved: options.onRemoved,
    onStatus: (peer, self) => {
      if (options.learnMembers === undefined || peer.cluster_id !== self.clusterId) return;
      if (peer.cluster_id === null || peer.applied_index <= self.lastIndex) return;
      options.learnMembers(membersOfStatus(peer), peer.applied_index);
    },
  });
}
