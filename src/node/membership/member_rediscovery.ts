/**
 * `MemberRediscovery`: a restarted node whose recorded members all moved (every one
 * restarted on another address while it was down) can reach none of them, and none of
 * them knows its new address either. So while such a node has no leader, it falls back to
 * its `--peers`: it finds a seed the way a joiner does, asks it for `/status`, and takes
 * the current addresses of the members it already knows from there. Then its Raft
 * transport reaches them, it hears from a leader, and it announces its own new address.
 *
 * The seed's word is taken only where it cannot mislead: the seed must belong to this
 * node's cluster, and only addresses of members whose key this node already records are
 * replaced (a wrong address cannot stand in for a key; the connection checks the key).
 *
 * Attempts are spaced out: the first after `LEADERLESS_CHECKS_MIN` checks in a row find no
 * leader, each later one after twice as many, up to `LEADERLESS_CHECKS_MAX`.
 *
 * @module
 */

import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { sameAddresses } from "./member_directory.ts";
import { type Scheduler, SYSTEM_SCHEDULER } from "../../util/scheduler.ts";

/** How often a node checks whether it has a leader. */
export const REDISCOVERY_CHECK_INTERVAL_MS = 1_000;
/** Leaderless checks in a row before the first attempt: elections end well within them. */
export const LEADERLESS_CHECKS_MIN = 3;
/** Most leaderless checks between two attempts. */
export const LEADERLESS_CHECKS_MAX = 30;

/** Options of a {@linkcode MemberRediscovery}. */
export interface MemberRediscoveryOptions {
  /** The clock the checks run on; the system's by default. */
  scheduler?: Scheduler;
  /** Whether this node is a member without a leader: only then is it worth asking. */
  leaderless: () => boolean;
  /** This node's cluster id. */
  clusterId: () => string | null;
  /** The record this node keeps of `nodeId`, or `null`. */
  recordOf: (nodeId: number) => MemberInfo | null;
  /** Finds a seed through `--peers` and returns its `/status` and its name; rejects if none. */
  askPeers: () => Promise<{ peer: string; status: StatusJson }>;
  /** Records the members whose addresses changed. */
  onMoved: (moved: MemberInfo[], peer: string) => void;
  /** Reports an attempt that learned nothing, with why. */
  onFailed: (reason: string) => void;
}

/** Falls back to `--peers` while a restarted node finds no leader. */
export class MemberRediscovery {
  readonly #options: MemberRediscoveryOptions;
  #stopChecks: (() => void) | null = null;
  #leaderlessChecks = 0;
  #checksBeforeAttempt = LEADERLESS_CHECKS_MIN;
  #asking = false;

  constructor(options: MemberRediscoveryOptions) {
    this.#options = options;
  }

  /** Checks every `REDISCOVERY_CHECK_INTERVAL_MS` until `stop()`. */
  start(): void {
    this.#stopChecks ??= (this.#options.scheduler ?? SYSTEM_SCHEDULER).every(
      REDISCOVERY_CHECK_INTERVAL_MS,
      () => void this.check(),
    );
  }

  /** Stops checking. */
  stop(): void {
    this.#stopChecks?.();
    this.#stopChecks = null;
  }

  /** One check; resolves with the members whose addresses it replaced (empty for none). */
  async check(): Promise<MemberInfo[]> {
    if (!this.#options.leaderless()) {
      this.#leaderlessChecks = 0;
      this.#checksBeforeAttempt = LEADERLESS_CHECKS_MIN;
      return [];
    }
    this.#leaderlessChecks++;
    if (this.#asking || this.#leaderlessChecks < this.#checksBeforeAttempt) return [];
    this.#asking = true;
    this.#leaderlessChecks = 0;
    this.#checksBeforeAttempt = Math.min(LEADERLESS_CHECKS_MAX, this.#checksBeforeAttempt * 2);
    try {
      const { peer, status } = await this.#options.askPeers();
      const moved = this.#movedMembers(status);
      if (typeof moved === "string") {
        this.#options.onFailed(`${peer}: ${moved}`);
        return [];
      }
      if (moved.length > 0) this.#options.onMoved(moved, peer);
      return moved;
    } catch (error) {
      this.#options.onFailed(error instanceof Error ? error.message : String(error));
      return [];
    } finally {
      this.#asking = false;
    }
  }

  /** The known members that `status` places elsewhere, or why `status` is not trusted. */
  #movedMembers(status: StatusJson): MemberInfo[] | string {
    const clusterId = this.#options.clusterId();
    if (status.cluster_id === null || status.cluster_id !== clusterId) {
      return `belongs to cluster ${status.cluster_id ?? "(none)"}, not ${clusterId ?? "(none)"}`;
    }
    const moved: MemberInfo[] = [];
    for (const member of status.members) {
      const known = this.#options.recordOf(member.node_id);
      if (known === null || member.p2p_node_id !== known.p2pNodeId) continue;
      const current = {
        nodeId: member.node_id,
        p2pNodeId: known.p2pNodeId,
        addresses: member.p2p_addresses,
        relayUrl: member.p2p_relay_url,
      };
      if (!sameAddresses(current, known)) moved.push(current);
    }
    return moved;
  }
}
