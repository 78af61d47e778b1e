/**
 * The log a founding node starts from. A cluster is born the way every later member joins,
 * through its own log, so that a node that joins later and replays the log from index 1
 * learns the founder's record and the cluster id like every other fact:
 *
 * - index 1: `addLearner(founder)` with the founder's `MemberInfo` as context;
 * - index 2: `promoteLearner(founder)`: the founder is the only voter;
 * - index 3: `initCluster(clusterId)`;
 *
 * all at term 1 and committed (hard state term 1, commit 3): a single voter's own log is
 * its quorum. The founder then campaigns and commits its no-op at term 2.
 *
 * @module
 */

import type { Entry, HardState } from "../raft/types.ts";
import { encodeCommand } from "./commands.ts";
import { encodeMemberInfo, type MemberInfo } from "./member_info.ts";

/** The term of the founding entries. */
export const FOUNDING_TERM = 1;

/** The entries and hard state a founder persists before it first starts its core. */
export function foundingLog(
  founder: MemberInfo,
  clusterId: string,
): { entries: Entry[]; hardState: HardState } {
  const term = FOUNDING_TERM;
  const nodeId = founder.nodeId;
  const entries: Entry[] = [
    {
      type: "membership",
      term,
      index: 1,
      change: { type: "addLearner", nodeId, context: encodeMemberInfo(founder) },
    },
    { type: "membership", term, index: 2, change: { type: "promoteLearner", nodeId } },
    { type: "normal", term, index: 3, data: encodeCommand({ type: "initCluster", clusterId }) },
  ];
  return { entries, hardState: { term, vote: 0, commit: entries.length } };
}
