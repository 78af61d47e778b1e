/**
 * The Raft consensus core: a pure state machine in the shape of etcd-raft (DESIGN.md §9).
 *
 * `RaftCore` does no I/O. Time enters as `tick()`, peers' messages as `step()`, client
 * requests as `propose()`, `proposeMembership()`, `readIndex()` and
 * `transferLeadership()`; randomness comes from the injected `random`. Everything the
 * node must do in response is collected in a {@linkcode Ready}.
 *
 * ## The Ready contract
 *
 * The node runs one loop. Whenever `hasReady()` is true it takes `const ready = ready()`
 * and, in this order:
 *
 * 1. **Send early** `ready.messagesBeforePersist`: a leader's AppendEntries and heartbeats
 *    when the Ready keeps the term and vote (Raft thesis §10.2.1). The core decides which
 *    messages may outrun the persist; the node does not.
 * 2. **Persist**: `ready.snapshot` (if not null), `ready.entries` (replacing any stored
 *    entries from `entries[0].index` on) and `ready.hardState` (if not null), atomically;
 *    durably (synced) when `ready.mustSync`. Nothing below may happen before this is done:
 *    a vote or an acknowledgement sent before its state is durable can be forgotten in a
 *    crash and break safety. A Ready without `mustSync` only moves the commit index, which
 *    the node can rebuild from the durable log.
 * 3. **Send** `ready.messages` to their `to` nodes. Delivery may fail or reorder; the core
 *    retries. Report undeliverable peers with `reportUnreachable(id)`, and the outcome of
 *    every `InstallSnapshot` with `reportSnapshot(id, ok)` (without a report, a lost
 *    snapshot is only sent again after `SNAPSHOT_RETRY_ELECTION_TIMEOUTS` election timeouts).
 * 4. **Apply**: install `ready.snapshot` into the state machine (if not null), then apply
 *    `ready.committedEntries` in order. Serve `ready.readStates` once the applied index
 *    reaches each `index`. `softState` tells role and leader changes. The apply may share
 *    the persist's transaction (then the messages of step 3 follow it).
 * 5. **Advance**: call `advance(ready)`. Only then may `ready()` be called again.
 *
 * `src/node/replication/ready_driver.ts` is the one implementation of this loop.
 *
 * `tick()`, `step()` and the request methods may be called between `ready()` and
 * `advance()`; their effects go into the next `Ready`.
 *
 * Hand every message from a peer to `step()`: stale, duplicated and misaddressed ones are
 * ignored there. Filter by membership with care: `status().confState` includes uncommitted
 * changes, which a new leader may undo, so a node may briefly not list the very leader it
 * must hear from to get its log repaired.
 *
 * A new cluster starts from storage the node has written itself (at term 1: index 1 adds
 * the founder as learner, index 2 promotes it, index 3 is the first command, commit 3): the
 * core delivers entries 1 to 3 as committed, and `campaign()` makes the sole voter leader at
 * once. A joining node starts from empty storage and learns the configuration from the log
 * or snapshot its leader sends. Log compaction (`DurableStorage.compact`) is the node's
 * business; the core sends `storage.snapshot()` to followers that need compacted entries.
 *
 * @module
 */

export { assert, InvariantViolation } from "../util/assert.ts";
export {
  applyMembershipChange,
  confStateAfter,
  confStatesEqual,
  emptyConfState,
  isMember,
  membershipChangeError,
} from "./membership.ts";
export type { ProgressState } from "./progress.ts";
export {
  type PeerProgress,
  type RaftConfig,
  RaftCore,
  type RaftStatus,
  READ_INDEX_PENDING_MAX,
  SNAPSHOT_RETRY_ELECTION_TIMEOUTS,
} from "./raft_core.ts";
export * from "./types.ts";
