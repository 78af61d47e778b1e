/**
 * The shared vocabulary of the Raft core: log entries, persistent state, messages, the
 * `Ready` batch and the read-only storage interface the core consults.
 *
 * Everything outside `src/raft/` (storage, transport, node, simulator) speaks in these
 * types; nothing here does I/O. Names follow the Raft paper (Ongaro & Ousterhout, 2014)
 * and the etcd-raft shape described in DESIGN.md section 9.
 *
 * @module
 */

/** A cluster member's Raft id: an integer ≥ 1. */
export type NodeId = number;

/** "Nobody": no vote cast, no leader known. */
export const NO_NODE: NodeId = 0;

/** The state that must be durable before any message that depends on it is sent (Raft §5.1, Figure 2). */
export interface HardState {
  /** Latest term this node has seen. */
  term: number;
  /** The candidate voted for in `term`, or `NO_NODE`. */
  vote: NodeId;
  /** Highest log index known to be committed. */
  commit: number;
}

/** The membership configuration: who votes and who only receives the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/**
 * A single-server membership change (Raft thesis §4.1). It takes effect on every node as
 * soon as it is appended to that node's log, not when it commits. At most one is
 * uncommitted at a time.
 */
export type MembershipChange =
  | {
    type: "addLearner";
    nodeId: NodeId;
    /** Opaque to the core: the state machine's record of the member (P2P id, addresses). */
    context: Uint8Array;
  }
  | { type: "promoteLearner"; nodeId: NodeId }
  | { type: "removeNode"; nodeId: NodeId };

/** An entry carrying a client command. Empty `data` is the no-op a new leader appends (Raft §8). */
export interface NormalEntry {
  type: "normal";
  term: number;
  index: number;
  data: Uint8Array;
}

/** An entry carrying a membership change. */
export interface MembershipEntry {
  type: "membership";
  term: number;
  index: number;
  change: MembershipChange;
}

/** One log entry. */
export type Entry = NormalEntry | MembershipEntry;

/** What a snapshot replaces: the log up to and including `index`. */
export interface SnapshotMetadata {
  /** Index of the last entry the snapshot covers. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** The configuration in force at `index`. */
  confState: ConfState;
}

/** A state machine image plus the log position it stands for. `data` is opaque to the core. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/** The role of a node. A learner is a follower that is not a voter. */
export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** State that need not be persisted but that callers want to observe when it changes. */
export interface SoftState {
  role: Role;
  /** The leader this node currently follows, or `NO_NODE`. */
  leaderId: NodeId;
}

/** The result of a linearizable read: once `appliedIndex >= index`, a read of local state is linearizable. */
export interface ReadState {
  requestId: number;
  index: number;
}

interface MessageHeader {
  /** The sender's current term (for pre-votes: the term it would campaign in). */
  term: number;
  from: NodeId;
  to: NodeId;
}

/** Raft §5.2 RequestVote; with `preVote` it is the pre-vote of thesis §9.6 and changes no state. */
export interface RequestVote extends MessageHeader {
  type: "RequestVote";
  lastLogIndex: number;
  lastLogTerm: number;
  preVote: boolean;
  /** Sent because of a leadership transfer: voters ignore their leader lease (thesis §3.10). */
  leadershipTransfer: boolean;
}

/** Answer to `RequestVote`. */
export interface RequestVoteResponse extends MessageHeader {
  type: "RequestVoteResponse";
  voteGranted: boolean;
  preVote: boolean;
}

/** Raft §5.3 AppendEntries. An empty `entries` with matching prev fields probes the follower. */
export interface AppendEntries extends MessageHeader {
  type: "AppendEntries";
  prevLogIndex: number;
  prevLogTerm: number;
  entries: Entry[];
  leaderCommit: number;
}

/** Answer to `AppendEntries` or `InstallSnapshot`. */
export interface AppendEntriesResponse extends MessageHeader {
  type: "AppendEntriesResponse";
  success: boolean;
  /** On success: the follower's log matches the leader's up to this index. */
  matchIndex: number;
  /** On rejection: the `prevLogIndex` that did not match. */
  rejectedIndex: number;
  /** On rejection: a hint for fast backtracking (the follower's last index, or the first index of the conflicting term). */
  hintIndex: number;
  /** On rejection: the follower's term at `hintIndex` (0 if none). */
  hintTerm: number;
}

/** Leader heartbeat. `commit` is capped at the follower's match index. `readContext` confirms a ReadIndex round. */
export interface Heartbeat extends MessageHeader {
  type: "Heartbeat";
  commit: number;
  readContext: number;
}

/** Answer to `Heartbeat`, echoing `readContext`. */
export interface HeartbeatResponse extends MessageHeader {
  type: "HeartbeatResponse";
  readContext: number;
}

/** Raft §7 InstallSnapshot, sent whole. */
export interface InstallSnapshot extends MessageHeader {
  type: "InstallSnapshot";
  snapshot: Snapshot;
}

/** Leadership transfer: the target campaigns at once (thesis §3.10). */
export interface TimeoutNow extends MessageHeader {
  type: "TimeoutNow";
}

/** A follower forwards a ReadIndex request to its leader. */
export interface ReadIndexRequest extends MessageHeader {
  type: "ReadIndexRequest";
  requestId: number;
}

/** The leader's answer to a forwarded ReadIndex request, after its heartbeat round. */
export interface ReadIndexResponse extends MessageHeader {
  type: "ReadIndexResponse";
  requestId: number;
  index: number;
}

/** Every message the core sends or receives. */
export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

/** The `type` tags of `Message`. */
export type MessageType = Message["type"];

/**
 * A batch of work the core hands to the node. The core says what must be durable before
 * what (the etcd `rawnode` discipline: `MustSync`, and messages held until after the
 * append); the node acts on it, in order:
 * 1. send `messagesBeforePersist` (they promise nothing that this Ready makes durable);
 * 2. persist `snapshot`, `entries` and `hardState` atomically, waiting for the disk when
 *    `mustSync` is true;
 * 3. send `messages`;
 * 4. apply `snapshot` (if any) then `committedEntries` to the state machine;
 * 5. call `advance(ready)`.
 */
export interface Ready {
  /** Role or leader changed since the last Ready; `null` when unchanged. */
  softState: SoftState | null;
  /** To persist; `null` when unchanged. */
  hardState: HardState | null;
  /** To append to durable storage; they replace any conflicting suffix. */
  entries: Entry[];
  /** To persist and install before applying `committedEntries`; `null` when none. */
  snapshot: Snapshot | null;
  /** Committed and not yet applied, in index order. */
  committedEntries: Entry[];
  /**
   * The persist must reach stable storage before anything below may happen: true when the
   * Ready holds entries, a snapshot, or a new term or vote. A Ready that only moves the
   * commit index need not wait for the disk: the commit index and the applied state can be
   * rebuilt from the durable log after a power loss (etcd's `MustSync` skips it too).
   */
  mustSync: boolean;
  /**
   * May be sent before this Ready is persisted: a leader's AppendEntries and heartbeats
   * when the Ready keeps the term and vote and holds no snapshot (Raft thesis §10.2.1: the
   * leader writes its disk while its followers write theirs). Safe because the leader
   * counts itself toward a commit only through acknowledgements it reads after this Ready
   * is persisted, and the term and vote they carry are already durable.
   */
  messagesBeforePersist: Message[];
  /**
   * To send only once the above is durable: votes, acknowledgements and everything else
   * that promises state this Ready persists (Raft §5.1, Figure 2).
   */
  messages: Message[];
  /** Completed ReadIndex requests. */
  readStates: ReadState[];
}

/** Why a proposal or request was not accepted. */
export type RejectReason =
  | { type: "notLeader"; leaderId: NodeId }
  | { type: "leadershipTransferInProgress"; leaderId: NodeId }
  | { type: "membershipChangeInProgress"; leaderId: NodeId }
  | { type: "invalidMembershipChange"; leaderId: NodeId; detail: string }
  /** A limit was reached (uncommitted bytes, pending reads): retry after some work has committed. */
  | { type: "overloaded"; leaderId: NodeId; detail: string }
  /** The request cannot be served as asked (e.g. a leadership transfer to a non-voter). */
  | { type: "invalidRequest"; leaderId: NodeId; detail: string };

/** The answer to `propose` and `proposeMembership`. */
export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; reason: RejectReason };

/**
 * The durable state the core reads. Implementations: `MemoryStorage` (simulation) and
 * `SqliteStorage` (the node). Writes happen outside the core, when the node handles a
 * `Ready`; the core only reads.
 */
export interface RaftStorage {
  /** The persisted hard state and the configuration at the end of the persisted log. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries with index in `[low, high)`, at least one, and no more than fit in about
   * `maxBytes` (see `entryBytes`). Precondition: `firstIndex() <= low < high <= lastIndex() + 1`.
   */
  entries(low: number, high: number, maxBytes: number): Entry[];
  /**
   * The term of the entry at `index`. For `firstIndex() - 1` it is the snapshot's term.
   * `null` when the index is compacted away or beyond `lastIndex()`.
   */
  term(index: number): number | null;
  /** Index of the first entry still in the log (the snapshot's index + 1). */
  firstIndex(): number;
  /** Index of the last entry (the snapshot's index when the log is empty). */
  lastIndex(): number;
  /** The latest snapshot, used to bring a follower that is behind `firstIndex()` up to date. */
  snapshot(): Snapshot;
}

/** Approximate size of an entry in bytes, used for message and flow-control limits. */
export function entryBytes(entry: Entry): number {
  const headerBytes = 24;
  if (entry.type === "normal") return headerBytes + entry.data.length;
  if (entry.change.type === "addLearner") return headerBytes + 16 + entry.change.context.length;
  return headerBytes + 16;
}
