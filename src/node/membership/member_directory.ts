/**
 * `MemberDirectory`: where each member is (its P2P id, addresses, relay) and who counts as
 * a member right now, for the Raft transport and for forwarding RPCs to the leader.
 *
 * Addresses come from, newest first: records learned while joining (the seed's member
 * list), membership entries as soon as they are appended (a leader replicates to a new
 * learner before the change commits), and the applied state machine.
 *
 * A node counts as a member while it is in the configuration at the end of the log (what
 * the core acts on, so a new learner is reachable at once) or in the applied one; or while
 * a member ahead of this node vouches for it (`rememberVouched`). A
 * removed node's key therefore stops counting when its removal is applied, not when it is
 * appended: an appended removal may still be truncated by a new leader, and that leader
 * may be the very node it removes (its AppendEntries must get through to repair our log).
 *
 * @module
 */

import { isMember } from "../../raft/membership.ts";
import type { ConfState, Entry, NodeId } from "../../raft/types.ts";
import { decodeMemberInfo, type MemberInfo } from "../../state_machine/member_info.ts";
import type { PeerAddress } from "../../transport/p2p_endpoint.ts";
import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import type { RaftPeerDirectory } from "../../transport/raft_transport.ts";

/** Where a directory reads membership from. */
export interface MemberConfigurations {
  /** The configuration at the end of the log, appended changes included (the core's). */
  latest: () => ConfState;
  /** The configuration of the applied state machine. */
  applied: () => ConfState;
  /** Whether the applied state revoked `p2pNodeId` (a removed member's key); none if absent. */
  revoked?: (p2pNodeId: string) => boolean;
  /** The applied index, which ends what members vouched for (`rememberVouched`); none if absent. */
  appliedIndex?: () => number;
}

/** The membership and addresses a node knows of. */
export class MemberDirectory implements RaftPeerDirectory {
  readonly #selfId: NodeId;
  readonly #configurations: MemberConfigurations;
  readonly #records = new Map<NodeId, MemberInfo>();
  /** Members named by the seed while this node had no configuration of its own yet. */
  readonly #provisional = new Set<NodeId>();
  /** Members a member ahead of this node listed, until this node applies that far. */
  readonly #vouched = new Map<NodeId, number>();

  /** A directory for node `selfId`; `configurations` reads the latest and applied ones. */
  constructor(selfId: NodeId, configurations: MemberConfigurations) {
    this.#selfId = selfId;
    this.#configurations = configurations;
  }

  /** Records `info` (newer knowledge replaces older). */
  remember(info: MemberInfo): void {
    this.#records.set(info.nodeId, info);
  }

  /**
   * Records the members a seed reported while joining: until this node's own log names
   * it, they may connect to it (the leader replicates to a learner at once).
   */
  rememberProvisional(infos: readonly MemberInfo[]): void {
    for (const info of infos) {
      this.remember(info);
      this.#provisional.add(info.nodeId);
    }
  }

  /**
   * Records the members that a member ahead of this node listed in its status (applied up
   * to `appliedIndex`): until this node applies that far itself, they count as members. A
   * member that missed the change adding a node would otherwise refuse that node's Raft
   * connection, and when that node leads, never catch up (found by the simulator, issue 8).
   */
  rememberVouched(infos: readonly MemberInfo[], appliedIndex: number): void {
    for (const info of infos) {
      if (info.nodeId === this.#selfId) continue;
      this.remember(info);
      this.#vouched.set(info.nodeId, Math.max(appliedIndex, this.#vouched.get(info.nodeId) ?? 0));
    }
  }

  /** Learns the record of every learner added in `entries` (as soon as they are appended). */
  learnFromEntries(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.type !== "membership" || entry.change.type !== "addLearner") continue;
      const decoded = decodeMemberInfo(entry.change.context);
      if (decoded.ok) this.remember(decoded.value);
    }
  }

  /** The record of `nodeId`, or `null`. */
  recordOf(nodeId: NodeId): MemberInfo | null {
    return this.#records.get(nodeId) ?? null;
  }

  addressOf(nodeId: NodeId): PeerAddress | null {
    if (nodeId === this.#selfId || !this.#counts(nodeId)) return null;
    const record = this.#records.get(nodeId);
    if (record === undefined) return null;
    return { p2pNodeId: record.p2pNodeId, addresses: record.addresses, relayUrl: record.relayUrl };
  }

  memberIdOf(p2pNodeId: string): NodeId | null {
    // A revoked key is nobody's, whatever records or a seed's list say: Raft links and
    // the secret gate ask here.
    if (this.isRevoked(p2pNodeId)) return null;
    // Records of removed members stay; the same key may have rejoined under another id.
    for (const record of this.#records.values()) {
      if (record.p2pNodeId !== p2pNodeId || record.nodeId === this.#selfId) continue;
      if (this.#counts(record.nodeId)) return record.nodeId;
    }
    return null;
  }

  /** Whether `p2pNodeId` belongs to a removed member, revoked cluster-wide. */
  isRevoked(p2pNodeId: string): boolean {
    return this.#configurations.revoked?.(p2pNodeId) ?? false;
  }

  /**
   * A member of the configuration in force; or, until this node's own log has reached the
   * entry that added it (before which the log may not yet name the current leader), one of
   * the members the seed reported. From then on the log alone decides: the seed's list is
   * forgotten, so it does not come back if this node is removed later.
   */
  #counts(nodeId: NodeId): boolean {
    const latest = this.#configurations.latest();
    if (isMember(latest, this.#selfId)) this.#provisional.clear();
    return isMember(latest, nodeId) || isMember(this.#configurations.applied(), nodeId) ||
      this.#provisional.has(nodeId) || this.#isVouched(nodeId);
  }

  #isVouched(nodeId: NodeId): boolean {
    const until = this.#vouched.get(nodeId);
    const applied = this.#configurations.appliedIndex;
    if (until === undefined || applied === undefined) return false;
    if (applied() < until) return true;
    // Applied that far: the log decides from now on.
    this.#vouched.delete(nodeId);
    return false;
  }
}

/** The member records a `cluster.status` answer lists (those with a P2P id). */
export function membersOfStatus(status: Pick<StatusJson, "members">): MemberInfo[] {
  return status.members.flatMap((member) =>
    member.p2p_node_id === null ? [] : [{
      nodeId: member.node_id,
      p2pNodeId: member.p2p_node_id,
      addresses: member.p2p_addresses,
      relayUrl: member.p2p_relay_url,
    }]
  );
}

/** Whether two records name the same addresses and relay. */
export function sameAddresses(a: MemberInfo, b: MemberInfo): boolean {
  return a.relayUrl === b.relayUrl && a.addresses.length === b.addresses.length &&
    a.addresses.every((address, i) => address === b.addresses[i]);
}
