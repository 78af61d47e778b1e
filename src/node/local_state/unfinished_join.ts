/**
 * Whether a node that restarts from its data dir is still joining: its log does not name it
 * as a member yet. Such a node knows only the members its partial log names, and the leader
 * may be none of them (leadership moved on to a node added later), whose Raft connection it
 * would then refuse for good; so it joins again through `--peers`, keeping its log, term and
 * vote (`cluster_state.ts`). The simulator restarts its machines by the same rule.
 *
 * @module
 */

import { isMember } from "../../raft/membership.ts";
import type { ConfState } from "../../raft/types.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";

/**
 * True when `latest` (the configuration at the end of the stored log) does not name `self`
 * and its key was not revoked (a removed member restarts as before, and finds out so).
 */
export function joinUnfinished(
  latest: ConfState,
  self: Pick<MemberInfo, "nodeId" | "p2pNodeId">,
  isRevoked: (p2pNodeId: string) => boolean,
): boolean {
  return !isMember(latest, self.nodeId) && !isRevoked(self.p2pNodeId);
}
