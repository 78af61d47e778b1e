/**
 * Membership configurations and the rules for changing them one server at a time.
 *
 * Shared by the core (which tracks the configuration of its log, including unstable
 * entries) and by storage (which reports the configuration at the end of the persisted
 * log in `initialState()`), so that both derive it the same way.
 *
 * @module
 */

import type { ConfState, Entry, MembershipChange, NodeId } from "./types.ts";

/** An empty configuration: the state of a node that has not joined a cluster yet. */
export function emptyConfState(): ConfState {
  return { voters: [], learners: [] };
}

/** True when `nodeId` is a voter or a learner in `conf`. */
export function isMember(conf: ConfState, nodeId: NodeId): boolean {
  return conf.voters.includes(nodeId) || conf.learners.includes(nodeId);
}

/**
 * Why `change` cannot be applied to `conf`, or `null` when it can. Single-server changes
 * (Raft thesis §4.1): add a learner that is not a member, promote a learner, remove a member.
 */
export function membershipChangeError(conf: ConfState, change: MembershipChange): string | null {
  switch (change.type) {
    case "addLearner":
      if (!Number.isSafeInteger(change.nodeId) || change.nodeId < 1) {
        return `node id ${change.nodeId} is not an integer >= 1`;
      }
      return isMember(conf, change.nodeId) ? `node ${change.nodeId} is already a member` : null;
    case "promoteLearner":
      return conf.learners.includes(change.nodeId)
        ? null
        : `node ${change.nodeId} is not a learner`;
    case "removeNode":
      if (!isMember(conf, change.nodeId)) return `node ${change.nodeId} is not a member`;
      if (conf.voters.length === 1 && conf.voters[0] === change.nodeId) {
        return `node ${change.nodeId} is the last voter`;
      }
      return null;
  }
}

/** The configuration after `change`. Throws when `membershipChangeError` would report an error. */
export function applyMembershipChange(conf: ConfState, change: MembershipChange): ConfState {
  const error = membershipChangeError(conf, change);
  if (error !== null) throw new Error(`invalid membership change: ${error}`);
  const without = (ids: NodeId[]) => ids.filter((id) => id !== change.nodeId);
  switch (change.type) {
    case "addLearner":
      return { voters: [...conf.voters], learners: sorted([...conf.learners, change.nodeId]) };
    case "promoteLearner":
      return { voters: sorted([...conf.voters, change.nodeId]), learners: without(conf.learners) };
    case "removeNode":
      return { voters: without(conf.voters), learners: without(conf.learners) };
  }
}

/** The configuration after every membership entry in `entries`, starting from `conf`. */
export function confStateAfter(conf: ConfState, entries: readonly Entry[]): ConfState {
  let current = conf;
  for (const entry of entries) {
    if (entry.type === "membership") current = applyMembershipChange(current, entry.change);
  }
  return current;
}

/** True when both configurations have the same voters and learners. */
export function confStatesEqual(a: ConfState, b: ConfState): boolean {
  const same = (x: NodeId[], y: NodeId[]) =>
    x.length === y.length && sorted(x).every((id, i) => id === sorted(y)[i]);
  return same(a.voters, b.voters) && same(a.learners, b.learners);
}

function sorted(ids: NodeId[]): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}
