/**
 * Whether a node that restarts from its data dir is still joining: the committed part of its
 * log does not name it as a member yet. Such a node knows only the members its partial log
 * names, and the leader may be none of them (leadership moved on to a node added later),
 * whose Raft connection it would then refuse for good; so it joins again through `--peers`,
 * keeping its log, term and vote (`cluster_state.ts`). The simulator restarts its machines
 * by the same rule.
 *
 * Committed, not merely in the log: an addition appended by a leader that crashed before
 * committing it may be lost, the surviving log not naming the node (simulator seed 21884).
 * A node that trusted such an entry would restart as a member that no member lists, and be
 * stopped as "removed" though it was never added. Joining again costs little when the
 * addition did commit after all: the leader answers a member's join with its addition.
 *
 * @module
 */

import { isMember } from "../../raft/membership.ts";
import type { ConfState, HardState } from "../../raft/types.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";

/** What `committedConfState` reads of a stored log (`SqliteStorage`, `MemoryStorage`). */
export interface StoredLog {
  initialState(): { hardState: HardState };
  firstIndex(): number;
  lastIndex(): number;
  confStateAt(index: number): ConfState;
}

/** The configuration as of the stored commit index: what this node knows was committed. */
export function committedConfState(log: StoredLog): ConfState {
  const { commit } = log.initialState().hardState;
  return log.confStateAt(Math.max(log.firstIndex() - 1, Math.min(commit, log.lastIndex())));
}

/**
 * True when `committed` (the configuration as of the stored commit index) does not name
 * `self` and its key was not revoked (a removed member restarts as before, and finds out so).
 */
export function joinUnfinished(
  committed: ConfState,
  self: Pick<MemberInfo, "nodeId" | "p2pNodeId">,
  isRevoked: (p2pNodeId: string) => boolean,
): boolean {
  return !isMember(committed, self.nodeId) && !isRevoked(self.p2pNodeId);
}
