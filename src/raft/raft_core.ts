/**
 * `RaftCore`: the Raft consensus algorithm as a pure state machine (the etcd-raft shape).
 *
 * Inputs are `tick()` (time), `step(message)` (peers), `propose*`, `readIndex`,
 * `transferLeadership`, `campaign` and the transport's reports. Outputs are collected in a
 * `Ready`; the node persists, sends, applies, then calls `advance`. Nothing here does I/O.
 * Section references are to the Raft paper (Ongaro & Ousterhout, 2014) and, as "thesis",
 * to Ongaro's dissertation "Consensus: Bridging Theory and Practice" (2014).
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { membershipChangeError } from "./membership.ts";
import { MembershipLog } from "./membership_log.ts";
import { isWellFormedMessage } from "./message_shape.ts";
import type { Progress, ProgressState } from "./progress.ts";
import { ProgressTracker } from "./progress_tracker.ts";
import { RaftLog } from "./raft_log.ts";
import { type DeferredRead, ReadIndexQueue } from "./read_index_queue.ts";
import {
  type AppendEntries,
  type AppendEntriesResponse,
  type ConfState,
  type Entry,
  entryBytes,
  type HardState,
  type Heartbeat,
  type HeartbeatResponse,
  type InstallSnapshot,
  type MembershipChange,
  type Message,
  NO_NODE,
  type NodeId,
  type ProposeResult,
  type RaftStorage,
  type ReadState,
  type Ready,
  type RejectReason,
  type RequestVote,
  type RequestVoteResponse,
  type Role,
  type SoftState,
} from "./types.ts";

/** How a `RaftCore` is set up. */
export interface RaftConfig {
  /** This node's id (>= 1). */
  id: NodeId;
  /** The durable state to start from; the core only reads it. */
  storage: RaftStorage;
  /** Index of the last entry the state machine has applied (restart: do not re-deliver). */
  applied: number;
  /** Election timeout, randomized in [electionTicks, 2 * electionTicks). */
  electionTicks: number;
  /** Ticks between a leader's heartbeats; less than `electionTicks`. */
  heartbeatTicks: number;
  /** Per-follower limit of AppendEntries in flight in the replicate state. */
  maxInflightMessages: number;
  /** Soft limit on the entry bytes in one AppendEntries (always at least one entry). */
  maxMessageBytes: number;
  /** Limit on the bytes of proposed-but-uncommitted entries on the leader (proposals beyond are rejected). */
  maxUncommittedBytes: number;
  /** Run a pre-vote (thesis §9.6) before every election, so a partitioned node cannot inflate terms. */
  preVote: boolean;
  /** Leaders step down without a quorum, and followers keep a leader lease (thesis §6.2, §4.2.3). */
  checkQuorum: boolean;
  /** Uniform in [0, 1); injected so that simulation is deterministic. */
  random: () => number;
  /** Soft limit on the bytes of `Ready.committedEntries` (always at least one entry). Default: `maxMessageBytes`. */
  maxCommittedBytesPerReady?: number;
  /** Limit on ReadIndex requests waiting on the leader. Default: `READ_INDEX_PENDING_MAX`. */
  maxPendingReads?: number;
}

/** Default of `RaftConfig.maxPendingReads`. */
export const READ_INDEX_PENDING_MAX = 4096;

/** Election timeouts a leader waits for a snapshot's outcome before it sends the snapshot again. */
export const SNAPSHOT_RETRY_ELECTION_TIMEOUTS = 10;

/** What the leader knows about one member's replication. */
export interface PeerProgress {
  /** The member. */
  nodeId: NodeId;
  /** Highest index known to match the leader's log. */
  matchIndex: number;
  /** Next index the leader will send. */
  nextIndex: number;
  /** How the leader replicates to it. */
  state: ProgressState;
  /** Heard from within the current check-quorum round. */
  recentActive: boolean;
  /** A learner: receives the log, does not vote. */
  isLearner: boolean;
}

/** A snapshot of the core's state for `/status`, metrics and tests. */
export interface RaftStatus {
  /** This node's id. */
  id: NodeId;
  /** Current term. */
  term: number;
  /** Vote cast in `term`, or `NO_NODE`. */
  vote: NodeId;
  /** Commit index. */
  commit: number;
  /** Applied index (as acknowledged by `advance`). */
  applied: number;
  /** Current role. */
  role: Role;
  /** The leader this node follows (itself when leader), or `NO_NODE`. */
  leaderId: NodeId;
  /** The configuration at the end of the log, in force now. */
  confState: ConfState;
  /** Index of the last entry, persisted or not. */
  lastIndex: number;
  /** The target of a leadership transfer in progress, or `NO_NODE`. */
  leadTransferee: NodeId;
  /** Leader only, else []. */
  progress: PeerProgress[];
}

type CampaignKind = "preElection" | "election" | "transfer";

const EMPTY_DATA = new Uint8Array(0);

function validateConfig(config: RaftConfig): void {
  const positive = (name: string, value: number) =>
    assert(
      Number.isSafeInteger(value) && value >= 1,
      `config.${name} is an integer >= 1`,
      { detail: () => `${value}` },
    );
  positive("id", config.id);
  positive("electionTicks", config.electionTicks);
  positive("heartbeatTicks", config.heartbeatTicks);
  positive("maxInflightMessages", config.maxInflightMessages);
  positive("maxMessageBytes", config.maxMessageBytes);
  positive("maxUncommittedBytes", config.maxUncommittedBytes);
  if (config.maxCommittedBytesPerReady !== undefined) {
    positive("maxCommittedBytesPerReady", config.maxCommittedBytesPerReady);
  }
  if (config.maxPendingReads !== undefined) positive("maxPendingReads", config.maxPendingReads);
  assert(
    config.heartbeatTicks < config.electionTicks,
    "config.heartbeatTicks < config.electionTicks",
    { detail: () => `heartbeat ${config.heartbeatTicks}, election ${config.electionTicks}` },
  );
  assert(
    Number.isSafeInteger(config.applied) && config.applied >= 0,
    "config.applied >= 0",
    { detail: () => `${config.applied}` },
  );
}

/**
 * One Raft node's consensus state. Not thread-safe and not re-entrant: the owner calls it
 * from one loop. Invariants (asserted): `applied <= commit <= lastIndex`, the commit index
 * and the term never decrease, a vote is never changed within a term, a leader only appends.
 */
export class RaftCore {
  readonly #id: NodeId;
  readonly #config: RaftConfig;
  readonly #log: RaftLog;
  readonly #tracker: ProgressTracker;
  readonly #membership: MembershipLog;
  readonly #reads: ReadIndexQueue;

  /** Raft Figure 2 persistent state (with `#log.committed`). */
  #term = 0;
  /** Invariant: set at most once per term. */
  #vote: NodeId = NO_NODE;
  #role: Role = "follower";
  #leaderId: NodeId = NO_NODE;
  /** Ticks since the last election timeout reset; for a leader, since the last check-quorum round. */
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout: number;
  #leadTransferee: NodeId = NO_NODE;
  /** Leader: bytes of entries proposed in this term and not yet applied. */
  #uncommittedBytes = 0;

  #messages: Message[] = [];
  #readStates: ReadState[] = [];
  /** Leader: entries were appended or the commit index moved; followers hear at the next `Ready` (one message per batch). */
  #broadcastPending = false;
  /** Leader: a ReadIndex round waits for its heartbeat, sent at the next `Ready`. */
  #readHeartbeatPending = false;

  #previousSoftState: SoftState;
  #previousHardState: HardState;
  #readyInProgress = false;

  /** A node restarted from `config.storage` as a follower (or a fresh node when the storage is empty). */
  constructor(config: RaftConfig) {
    validateConfig(config);
    this.#id = config.id;
    this.#config = config;
    const { hardState, confState } = config.storage.initialState();
    this.#log = new RaftLog(config.storage, {
      committed: hardState.commit,
      applied: config.applied,
      maxCommittedBytesPerReady: config.maxCommittedBytesPerReady ?? config.maxMessageBytes,
    });
    this.#membership = MembershipLog.recover(config.storage, {
      committed: hardState.commit,
      confState,
    });
    this.#tracker = new ProgressTracker(config.maxInflightMessages);
    this.#tracker.setConfiguration(this.#membership.conf, this.#log.lastIndex() + 1);
    this.#reads = new ReadIndexQueue(config.maxPendingReads ?? READ_INDEX_PENDING_MAX);
    this.#term = hardState.term;
    this.#vote = hardState.vote;
    this.#randomizedElectionTimeout = this.#nextElectionTimeout();
    this.#previousHardState = { ...hardState };
    this.#previousSoftState = { role: this.#role, leaderId: this.#leaderId };
    this.#checkInvariants();
  }

  // ---------------------------------------------------------------------------------------
  // Public API

  /** One unit of time passed: followers count toward an election, leaders toward a heartbeat. */
  tick(): void {
    if (this.#role === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  /** Handles a message from a peer. Messages not addressed here, malformed or stale ones are ignored. */
  step(message: Message): void {
    if (!isWellFormedMessage(message, this.#id)) return;
    if (!this.#stepTerm(message)) return;
    if (message.type === "RequestVote") {
      this.#handleRequestVote(message);
      return;
    }
    switch (this.#role) {
      case "leader":
        this.#stepLeader(message);
        break;
      case "candidate":
      case "preCandidate":
        this.#stepCandidate(message);
        break;
      case "follower":
        this.#stepFollower(message);
        break;
    }
    this.#checkInvariants();
  }

  /** Proposes a command. Leader only; the result names the known leader otherwise. */
  propose(data: Uint8Array): ProposeResult {
    const refusal = this.#proposalRefusal();
    if (refusal !== null) return { ok: false, reason: refusal };
    const entry: Entry = {
      type: "normal",
      term: this.#term,
      index: this.#log.lastIndex() + 1,
      data,
    };
    const bytes = entryBytes(entry);
    // One proposal always fits when nothing is outstanding, so that a large entry is never stuck.
    if (
      this.#uncommittedBytes > 0 &&
      this.#uncommittedBytes + bytes > this.#config.maxUncommittedBytes
    ) {
      const detail =
        `${this.#uncommittedBytes} uncommitted bytes plus ${bytes} exceed ${this.#config.maxUncommittedBytes}`;
      return { ok: false, reason: { type: "overloaded", leaderId: this.#id, detail } };
    }
    this.#uncommittedBytes += bytes;
    this.#appendAsLeader(entry);
    return { ok: true, index: entry.index, term: entry.term };
  }

  /**
   * Proposes a single-server membership change (thesis §4.1). It takes effect here at once.
   * Refused while another membership entry is uncommitted, and until this leader has
   * committed an entry of its term (the fix to single-server changes from the raft-dev
   * list, 2015: otherwise two leaders' unrelated changes could form disjoint majorities).
   */
  proposeMembership(change: MembershipChange): ProposeResult {
    const refusal = this.#proposalRefusal();
    if (refusal !== null) return { ok: false, reason: refusal };
    if (this.#membership.hasUncommitted() || !this.#committedInCurrentTerm()) {
      return { ok: false, reason: { type: "membershipChangeInProgress", leaderId: this.#id } };
    }
    const error = membershipChangeError(this.#membership.conf, change);
    if (error !== null) {
      return {
        ok: false,
        reason: { type: "invalidMembershipChange", leaderId: this.#id, detail: error },
      };
    }
    const entry: Entry = {
      type: "membership",
      term: this.#term,
      index: this.#log.lastIndex() + 1,
      change,
    };
    this.#appendAsLeader(entry);
    return { ok: true, index: entry.index, term: entry.term };
  }

  /**
   * Starts a linearizable read (thesis §6.4). A `ReadState` with `requestId` appears in a
   * later `Ready` once leadership is confirmed; serve the read when `applied >= index`. A
   * follower forwards to its leader; a read can be lost with leadership (retry on timeout).
   */
  readIndex(requestId: number): { ok: true } | { ok: false; reason: RejectReason } {
    if (this.#role === "leader") {
      if (this.#reads.full()) {
        const detail = `${
          this.#config.maxPendingReads ?? READ_INDEX_PENDING_MAX
        } reads are pending`;
        return { ok: false, reason: { type: "overloaded", leaderId: this.#id, detail } };
      }
      this.#handleRead({ requestId, from: this.#id });
      return { ok: true };
    }
    if (this.#leaderId === NO_NODE) {
      return { ok: false, reason: { type: "notLeader", leaderId: NO_NODE } };
    }
    this.#send({
      type: "ReadIndexRequest",
      term: this.#term,
      from: this.#id,
      to: this.#leaderId,
      requestId,
    });
    return { ok: true };
  }

  /**
   * Hands leadership to voter `to` (thesis §3.10): proposals stop, `to` is brought up to
   * date and told to campaign at once. Aborted after an election timeout.
   */
  transferLeadership(to: NodeId): { ok: true } | { ok: false; reason: RejectReason } {
    if (this.#role !== "leader") {
      return { ok: false, reason: { type: "notLeader", leaderId: this.#leaderId } };
    }
    if (to === this.#id || to === this.#leadTransferee) return { ok: true };
    if (!this.#tracker.isVoter(to)) {
      const detail = `node ${to} is not a voter: leadership can only go to a voter`;
      return { ok: false, reason: { type: "invalidRequest", leaderId: this.#id, detail } };
    }
    this.#leadTransferee = to;
    // The transfer gets one election timeout to complete.
    this.#electionElapsed = 0;
    const progress = this.#tracker.progress.get(to)!;
    if (progress.match === this.#log.lastIndex()) this.#sendTimeoutNow(to);
    else this.#maybeSendAppend(to, true);
    return { ok: true };
  }

  /** Starts an election now (with a pre-vote first when configured). Ignored by leaders and non-voters. */
  campaign(): void {
    if (this.#role === "leader" || !this.#promotable()) return;
    this.#campaign(this.#config.preVote ? "preElection" : "election");
  }

  /** The transport could not deliver to `nodeId`: stop streaming to it and probe again. */
  reportUnreachable(nodeId: NodeId): void {
    const progress = this.#role === "leader" ? this.#tracker.progress.get(nodeId) : undefined;
    if (progress?.state === "replicate") progress.becomeProbe();
  }

  /**
   * `nodeId` opened a new connection to this node (it restarted, or a new learner greets its
   * leader once it accepts the leader's messages): a leader whose probe of it is outstanding
   * probes again now, rather than at the next heartbeat answer. The earlier probe was
   * typically lost (reported unreachable); if not, the follower answers both.
   */
  reportReachable(nodeId: NodeId): void {
    const progress = this.#role === "leader" ? this.#tracker.progress.get(nodeId) : undefined;
    if (progress?.state !== "probe") return;
    progress.probeSent = false;
    this.#maybeSendAppend(nodeId, true);
  }

  /**
   * The transport finished sending a snapshot to `nodeId` (`ok`) or gave up. Either way the
   * leader probes again; it waits for the next heartbeat answer before it does, so a failing
   * follower is not flooded. The node must report every InstallSnapshot it sends.
   */
  reportSnapshot(nodeId: NodeId, ok: boolean): void {
    const progress = this.#role === "leader" ? this.#tracker.progress.get(nodeId) : undefined;
    if (progress?.state !== "snapshot") return;
    if (!ok) progress.pendingSnapshot = 0;
    progress.becomeProbe();
    progress.probeSent = true;
  }

  /** True when `ready()` has work for the node; false while a `Ready` awaits `advance()`. */
  hasReady(): boolean {
    if (this.#readyInProgress) return false;
    return this.#broadcastPending || this.#readHeartbeatPending || this.#messages.length > 0 ||
      this.#readStates.length > 0 || this.#log.unstable.entries.length > 0 ||
      this.#log.hasPendingSnapshot() ||
      this.#log.hasNextCommittedEntries() || this.#softStateChanged() || this.#hardStateChanged();
  }

  /**
   * The pending work: send `messagesBeforePersist`, persist (`snapshot`, `entries`,
   * `hardState`, synced when `mustSync`), then send `messages`, then apply (`snapshot`,
   * `committedEntries`), then `advance(ready)`. One `Ready` at a time.
   */
  ready(): Ready {
    assert(!this.#readyInProgress, "advance() is called before the next ready()");
    this.#flushLeaderBroadcasts();
    const softState = this.#softStateChanged()
      ? { role: this.#role, leaderId: this.#leaderId }
      : null;
    if (softState !== null) this.#previousSoftState = softState;
    const hardState = this.#hardStateChanged() ? this.#hardState() : null;
    if (hardState !== null) {
      assert(
        hardState.term >= this.#previousHardState.term,
        "the term never decreases",
        { detail: () => `${this.#previousHardState.term} -> ${hardState.term}` },
      );
      assert(
        hardState.commit >= this.#previousHardState.commit,
        "the commit index never decreases",
        { detail: () => `${this.#previousHardState.commit} -> ${hardState.commit}` },
      );
    }
    const entries = this.#log.unstableEntries();
    const snapshot = this.#log.unstable.snapshot;
    const keepsTermAndVote = hardState === null ||
      (hardState.term === this.#previousHardState.term &&
        hardState.vote === this.#previousHardState.vote);
    const [messagesBeforePersist, messages] = keepsTermAndVote && snapshot === null
      ? partitionReplication(this.#messages)
      : [[], this.#messages];
    const ready: Ready = {
      softState,
      hardState,
      entries,
      snapshot,
      committedEntries: this.#log.nextCommittedEntries(),
      mustSync: !keepsTermAndVote || entries.length > 0 || snapshot !== null,
      messagesBeforePersist,
      messages,
      readStates: this.#readStates,
    };
    this.#messages = [];
    this.#readStates = [];
    this.#readyInProgress = true;
    this.#checkInvariants();
    return ready;
  }

  /** `ready` was persisted, sent and applied. */
  advance(ready: Ready): void {
    assert(this.#readyInProgress, "advance() follows ready()");
    this.#readyInProgress = false;
    if (ready.hardState !== null) this.#previousHardState = { ...ready.hardState };
    const lastEntry = ready.entries.at(-1);
    if (lastEntry !== undefined) this.#log.unstable.stableTo(lastEntry.index, lastEntry.term);
    if (ready.snapshot !== null) {
      const index = ready.snapshot.metadata.index;
      this.#log.unstable.stableSnapshotTo(index);
      if (index > this.#log.applied) this.#log.appliedTo(index);
    }
    const lastCommitted = ready.committedEntries.at(-1);
    if (lastCommitted !== undefined) this.#log.appliedTo(lastCommitted.index);
    if (this.#role === "leader" && this.#uncommittedBytes > 0) {
      let appliedBytes = 0;
      for (const entry of ready.committedEntries) appliedBytes += entryBytes(entry);
      this.#uncommittedBytes = Math.max(0, this.#uncommittedBytes - appliedBytes);
    }
  }

  /** The current state, for observation. */
  status(): RaftStatus {
    const progress: PeerProgress[] = [];
    if (this.#role === "leader") {
      for (const [nodeId, pr] of this.#tracker.progress) {
        progress.push({
          nodeId,
          matchIndex: pr.match,
          nextIndex: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
        });
      }
    }
    const conf = this.#membership.conf;
    return {
      id: this.#id,
      term: this.#term,
      vote: this.#vote,
      commit: this.#log.committed,
      applied: this.#log.applied,
      role: this.#role,
      leaderId: this.#leaderId,
      confState: { voters: [...conf.voters], learners: [...conf.learners] },
      lastIndex: this.#log.lastIndex(),
      leadTransferee: this.#leadTransferee,
      progress,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Time

  #tickElection(): void {
    this.#electionElapsed += 1;
    if (this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign(this.#config.preVote ? "preElection" : "election");
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed += 1;
    this.#electionElapsed += 1;
    if (this.#electionElapsed >= this.#config.electionTicks) {
      this.#electionElapsed = 0;
      if (this.#config.checkQuorum) {
        // Check-quorum (thesis §6.2): a leader cut off from a majority steps down, so that
        // clients stop waiting on it and its lease lapses.
        if (!this.#tracker.quorumActive(this.#id)) {
          this.#becomeFollower(this.#term, NO_NODE);
          return;
        }
        this.#tracker.resetRecentActive(this.#id);
      }
      // Thesis §3.10: a transfer that did not complete within an election timeout is aborted.
      if (this.#leadTransferee !== NO_NODE) this.#leadTransferee = NO_NODE;
      this.#retryStalledSnapshots();
    }
    if (this.#heartbeatElapsed >= this.#config.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
    }
  }

  /**
   * A snapshot lost on the way with no `reportSnapshot` would leave its follower waiting
   * forever: after `SNAPSHOT_RETRY_ELECTION_TIMEOUTS` election timeouts without an answer,
   * the leader sends it again.
   */
  #retryStalledSnapshots(): void {
    for (const progress of this.#tracker.progress.values()) {
      if (progress.state !== "snapshot") continue;
      progress.snapshotRounds += 1;
      if (progress.snapshotRounds < SNAPSHOT_RETRY_ELECTION_TIMEOUTS) continue;
      progress.pendingSnapshot = 0;
      progress.becomeProbe();
    }
  }

  #nextElectionTimeout(): number {
    const random = this.#config.random();
    assert(random >= 0 && random < 1, "config.random() is in [0, 1)", {
      detail: () => `${random}`,
    });
    return this.#config.electionTicks + Math.floor(random * this.#config.electionTicks);
  }

  // ---------------------------------------------------------------------------------------
  // Terms, roles and elections

  /** Raft §5.1: a higher term makes this node a follower, a lower one marks the message stale. Returns whether to go on. */
  #stepTerm(message: Message): boolean {
    if (message.term > this.#term) {
      if (message.type === "RequestVote") {
        // Thesis §4.2.3 (with check-quorum as the lease): a node that heard from a leader within
        // the election timeout ignores vote requests, so a removed or partitioned server cannot
        // depose a working leader. A leadership transfer is the exception.
        const inLease = this.#config.checkQuorum && this.#leaderId !== NO_NODE &&
          this.#electionElapsed < this.#config.electionTicks;
        if (inLease && !message.leadershipTransfer) return false;
        // Thesis §9.6: a pre-vote request carries the term the sender would campaign in; it changes nothing here.
        if (message.preVote) return true;
      }
      // A granted pre-vote carries the term we would campaign in; we move there only after winning.
      if (message.type === "RequestVoteResponse" && message.preVote && message.voteGranted) {
        return true;
      }
      const fromLeader = message.type === "AppendEntries" || message.type === "Heartbeat" ||
        message.type === "InstallSnapshot";
      const electionElapsed = this.#electionElapsed;
      this.#becomeFollower(message.term, fromLeader ? message.from : NO_NODE);
      // Raft Figure 2: only a leader's message or a granted vote restarts the election timer.
      // A candidate with a stale log must not hold off elections by bumping the term.
      if (message.type === "RequestVote") this.#electionElapsed = electionElapsed;
      return true;
    }
    if (message.term < this.#term) {
      this.#answerStaleMessage(message);
      return false;
    }
    return true;
  }

  /**
   * A stale leader's AppendEntries or Heartbeat gets an answer with our term so it steps
   * down: with check-quorum or pre-vote this node may not otherwise disturb it. A stale
   * candidate or pre-candidate gets a refusal carrying our term so it learns the newer term
   * (Raft §5.1, Figure 2). Without it, a node whose log cannot win keeps campaigning one
   * term ahead of the only candidate that can, which never catches up (simulation seed 143).
   */
  #answerStaleMessage(message: Message): void {
    const to = message.from;
    if (
      (this.#config.checkQuorum || this.#config.preVote) &&
      (message.type === "AppendEntries" || message.type === "Heartbeat")
    ) {
      this.#sendAppendResponse(to, {
        success: false,
        matchIndex: 0,
        rejectedIndex: 0,
        hintIndex: 0,
        hintTerm: 0,
      });
    } else if (message.type === "RequestVote") {
      this.#send({
        type: "RequestVoteResponse",
        term: this.#term,
        from: this.#id,
        to,
        voteGranted: false,
        preVote: message.preVote,
      });
    }
  }

  /**
   * Raft §5.2, §5.4.1: grant a vote to a candidate whose log is at least as up-to-date, at
   * most one per term. Any node answers, whatever its configuration (thesis §4.1: servers
   * process requests without consulting their configuration); only voters' votes count.
   */
  #handleRequestVote(message: RequestVote): void {
    const canVote = this.#vote === message.from ||
      (this.#vote === NO_NODE && this.#leaderId === NO_NODE) ||
      (message.preVote && message.term > this.#term);
    const upToDate = this.#log.isUpToDate({
      index: message.lastLogIndex,
      term: message.lastLogTerm,
    });
    const granted = canVote && upToDate;
    this.#send({
      type: "RequestVoteResponse",
      term: granted ? message.term : this.#term,
      from: this.#id,
      to: message.from,
      voteGranted: granted,
      preVote: message.preVote,
    });
    if (granted && !message.preVote) {
      this.#electionElapsed = 0;
      this.#setVote(message.from);
    }
  }

  #setVote(nodeId: NodeId): void {
    assert(
      this.#vote === NO_NODE || this.#vote === nodeId,
      "a vote is never changed within a term",
      { detail: () => `term ${this.#term}: voted for ${this.#vote}, now ${nodeId}` },
    );
    this.#vote = nodeId;
  }

  /** A voter of its own configuration with no snapshot waiting may campaign; learners and removed nodes never do. */
  #promotable(): boolean {
    return this.#tracker.isVoter(this.#id) && !this.#log.hasPendingSnapshot();
  }

  #campaign(kind: CampaignKind): void {
    if (kind === "preElection") this.#becomePreCandidate();
    else this.#becomeCandidate();
    this.#tracker.recordVote(this.#id, true);
    const result = this.#tracker.tallyVotes();
    if (result === "won") {
      if (kind === "preElection") this.#campaign("election");
      else this.#becomeLeader();
      return;
    }
    const preVote = kind === "preElection";
    const request = {
      type: "RequestVote" as const,
      term: preVote ? this.#term + 1 : this.#term,
      from: this.#id,
      lastLogIndex: this.#log.lastIndex(),
      lastLogTerm: this.#log.lastTerm(),
      preVote,
      leadershipTransfer: kind === "transfer",
    };
    for (const voter of this.#tracker.voters) {
      if (voter !== this.#id) this.#send({ ...request, to: voter });
    }
  }

  #handleVoteResponse(message: RequestVoteResponse): void {
    if (message.preVote !== (this.#role === "preCandidate")) return;
    this.#tracker.recordVote(message.from, message.voteGranted);
    const result = this.#tracker.tallyVotes();
    if (result === "won") {
      if (this.#role === "preCandidate") this.#campaign("election");
      else this.#becomeLeader();
    } else if (result === "lost") {
      this.#becomeFollower(this.#term, NO_NODE);
    }
  }

  /** Clears per-term and per-role state; a new term also clears the vote. */
  #reset(term: number): void {
    if (term !== this.#term) {
      assert(term > this.#term, "the term never decreases", {
        detail: () => `${this.#term} -> ${term}`,
      });
      this.#term = term;
      this.#vote = NO_NODE;
    }
    this.#leaderId = NO_NODE;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#nextElectionTimeout();
    this.#leadTransferee = NO_NODE;
    this.#tracker.votes.clear();
    this.#reads.clear();
    this.#broadcastPending = false;
    this.#readHeartbeatPending = false;
    this.#uncommittedBytes = 0;
  }

  #becomeFollower(term: number, leaderId: NodeId): void {
    this.#reset(term);
    this.#role = "follower";
    this.#leaderId = leaderId;
  }

  #becomePreCandidate(): void {
    assert(this.#role !== "leader", "a leader does not campaign");
    // Thesis §9.6: the term and vote stay as they are until a majority says it would vote.
    this.#reset(this.#term);
    this.#role = "preCandidate";
  }

  #becomeCandidate(): void {
    assert(this.#role !== "leader", "a leader does not campaign");
    this.#reset(this.#term + 1);
    this.#setVote(this.#id);
    this.#role = "candidate";
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", "only a candidate becomes leader", {
      detail: () => this.#role,
    });
    this.#reset(this.#term);
    this.#role = "leader";
    this.#leaderId = this.#id;
    const lastIndex = this.#log.lastIndex();
    this.#tracker.resetProgress(lastIndex + 1);
    const own = this.#tracker.progress.get(this.#id);
    if (own !== undefined) {
      own.maybeUpdate(lastIndex);
      own.becomeReplicate();
      own.recentActive = true;
    }
    // Raft §8: an empty entry of the new term lets the leader learn which entries are
    // committed (§5.4.2 commits only current-term entries by counting).
    this.#appendAsLeader({
      type: "normal",
      term: this.#term,
      index: lastIndex + 1,
      data: EMPTY_DATA,
    });
  }

  // ---------------------------------------------------------------------------------------
  // Per-role message handling

  #stepLeader(message: Message): void {
    switch (message.type) {
      case "AppendEntriesResponse":
        this.#handleAppendResponse(message);
        break;
      case "HeartbeatResponse":
        this.#handleHeartbeatResponse(message);
        break;
      case "ReadIndexRequest":
        if (!this.#reads.full()) {
          this.#handleRead({ requestId: message.requestId, from: message.from });
        }
        break;
      default:
        // Another leader in this term cannot exist (Raft §5.2); responses for other roles are stale.
        break;
    }
  }

  #stepCandidate(message: Message): void {
    switch (message.type) {
      case "AppendEntries":
      case "Heartbeat":
      case "InstallSnapshot":
        // Raft §5.2: a leader of this term exists; go back to following it.
        this.#becomeFollower(this.#term, message.from);
        this.#stepFollower(message);
        break;
      case "RequestVoteResponse":
        this.#handleVoteResponse(message);
        break;
      default:
        break;
    }
  }

  #stepFollower(message: Message): void {
    switch (message.type) {
      case "AppendEntries":
      case "Heartbeat":
      case "InstallSnapshot":
        this.#electionElapsed = 0;
        this.#leaderId = message.from;
        if (message.type === "AppendEntries") this.#handleAppendEntries(message);
        else if (message.type === "Heartbeat") this.#handleHeartbeat(message);
        else this.#handleSnapshot(message);
        break;
      case "TimeoutNow":
        // Thesis §3.10: campaign at once, skipping the pre-vote, and ask voters to ignore their lease.
        if (this.#promotable()) this.#campaign("transfer");
        break;
      case "ReadIndexResponse":
        this.#readStates.push({ requestId: message.requestId, index: message.index });
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Log replication, follower side

  /** Raft §5.3: accept entries that follow a matching entry, replacing a conflicting suffix. */
  #handleAppendEntries(message: AppendEntries): void {
    const committed = this.#log.committed;
    if (message.prevLogIndex < committed) {
      this.#sendAppendResponse(message.from, { success: true, matchIndex: committed });
      return;
    }
    if (!this.#log.matchTerm(message.prevLogIndex, message.prevLogTerm)) {
      // Fast backtracking: point the leader at the last index that can still match, skipping
      // whole terms of entries the leader cannot have (Raft §5.3, the optimisation it describes).
      const hint = this.#log.findConflictByTerm(
        Math.min(message.prevLogIndex, this.#log.lastIndex()),
        message.prevLogTerm,
      );
      this.#sendAppendResponse(message.from, {
        success: false,
        rejectedIndex: message.prevLogIndex,
        hintIndex: hint.index,
        hintTerm: hint.term,
      });
      return;
    }
    const lastNewIndex = message.prevLogIndex + message.entries.length;
    const conflict = this.#log.findConflict(message.entries);
    if (conflict !== 0) {
      assert(
        conflict > committed,
        "a leader never overwrites committed entries",
        { detail: () => `conflict at ${conflict}, committed ${committed}` },
      );
      this.#appendToLog(message.entries.slice(conflict - message.prevLogIndex - 1));
    }
    this.#commitTo(Math.min(message.leaderCommit, lastNewIndex));
    this.#sendAppendResponse(message.from, { success: true, matchIndex: lastNewIndex });
  }

  #handleHeartbeat(message: Heartbeat): void {
    // The leader caps `commit` at our match index, so those entries are in our log.
    this.#commitTo(message.commit);
    const response: HeartbeatResponse = {
      type: "HeartbeatResponse",
      term: this.#term,
      from: this.#id,
      to: message.from,
      readContext: message.readContext,
    };
    this.#send(response);
  }

  /** Raft §7: install a newer snapshot, or just commit when our log already holds its last entry. */
  #handleSnapshot(message: InstallSnapshot): void {
    const { metadata } = message.snapshot;
    if (metadata.index <= this.#log.committed) {
      this.#sendAppendResponse(message.from, { success: true, matchIndex: this.#log.committed });
      return;
    }
    if (this.#log.matchTerm(metadata.index, metadata.term)) {
      this.#commitTo(metadata.index);
      this.#sendAppendResponse(message.from, { success: true, matchIndex: this.#log.committed });
      return;
    }
    this.#log.restore(message.snapshot);
    const conf = metadata.confState;
    this.#membership.restore({ voters: [...conf.voters], learners: [...conf.learners] });
    this.#tracker.setConfiguration(this.#membership.conf, this.#log.lastIndex() + 1);
    this.#sendAppendResponse(message.from, { success: true, matchIndex: this.#log.lastIndex() });
  }

  #sendAppendResponse(
    to: NodeId,
    fields:
      & Partial<
        Pick<AppendEntriesResponse, "matchIndex" | "rejectedIndex" | "hintIndex" | "hintTerm">
      >
      & {
        success: boolean;
      },
  ): void {
    this.#send({
      type: "AppendEntriesResponse",
      term: this.#term,
      from: this.#id,
      to,
      success: fields.success,
      matchIndex: fields.matchIndex ?? 0,
      rejectedIndex: fields.rejectedIndex ?? 0,
      hintIndex: fields.hintIndex ?? 0,
      hintTerm: fields.hintTerm ?? 0,
    });
  }

  // ---------------------------------------------------------------------------------------
  // The log and the configuration it carries

  /** Appends entries (replacing a conflicting suffix) and switches to the configuration they carry. */
  #appendToLog(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    let confChanged = first.index <= this.#log.lastIndex() &&
      this.#membership.truncatedFrom(first.index);
    this.#log.append(entries);
    confChanged = this.#membership.appended(entries) || confChanged;
    if (confChanged) this.#applyConfiguration();
  }

  #applyConfiguration(): void {
    this.#tracker.setConfiguration(this.#membership.conf, this.#log.lastIndex() + 1);
    if (this.#leadTransferee !== NO_NODE && !this.#tracker.isVoter(this.#leadTransferee)) {
      this.#leadTransferee = NO_NODE;
    }
  }

  #commitTo(index: number): void {
    if (index <= this.#log.committed) return;
    this.#log.commitTo(index);
    this.#onCommitAdvanced();
  }

  #onCommitAdvanced(): void {
    this.#membership.committedTo(this.#log.committed);
    if (this.#role !== "leader") return;
    this.#broadcastPending = true;
    if (this.#committedInCurrentTerm()) {
      for (const read of this.#reads.takeDeferred()) this.#handleRead(read);
    }
    if (!this.#membership.hasUncommitted() && !this.#tracker.isVoter(this.#id)) {
      this.#stepDownRemoved();
    }
  }

  /**
   * Thesis §4.2.2: a leader that is not in the committed configuration steps down. It first
   * tells followers the commit index, and hands off to the most up-to-date voter at once
   * rather than leaving the cluster to wait out an election timeout.
   */
  #stepDownRemoved(): void {
    this.#broadcastAppend();
    let successor: Progress | undefined;
    let successorId = NO_NODE;
    for (const voter of this.#tracker.voters) {
      const progress = this.#tracker.progress.get(voter);
      if (progress !== undefined && (successor === undefined || progress.match > successor.match)) {
        successor = progress;
        successorId = voter;
      }
    }
    const lastIndex = this.#log.lastIndex();
    this.#becomeFollower(this.#term, NO_NODE);
    if (successor !== undefined && successor.match === lastIndex) this.#sendTimeoutNow(successorId);
  }

  #committedInCurrentTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term;
  }

  // ---------------------------------------------------------------------------------------
  // Log replication, leader side

  #proposalRefusal(): RejectReason | null {
    if (this.#role !== "leader") return { type: "notLeader", leaderId: this.#leaderId };
    if (this.#leadTransferee !== NO_NODE) {
      return { type: "leadershipTransferInProgress", leaderId: this.#id };
    }
    return null;
  }

  #appendAsLeader(entry: Entry): void {
    assert(
      entry.index === this.#log.lastIndex() + 1,
      "a leader only appends to its log",
      { detail: () => `entry ${entry.index}, last index ${this.#log.lastIndex()}` },
    );
    this.#appendToLog([entry]);
    this.#tracker.progress.get(this.#id)?.maybeUpdate(entry.index);
    // Sending and committing wait for the next Ready, so that a burst of proposals goes out
    // as one AppendEntries per follower.
    this.#broadcastPending = true;
  }

  #flushLeaderBroadcasts(): void {
    if (this.#role !== "leader") return;
    if (this.#broadcastPending) {
      this.#maybeCommit();
      // Committing may have removed this leader; then there is nothing to broadcast.
      if (this.#role !== "leader") return;
      this.#broadcastPending = false;
      this.#broadcastAppend();
    }
    if (this.#readHeartbeatPending) {
      this.#readHeartbeatPending = false;
      this.#broadcastHeartbeat();
    }
  }

  /** Raft §5.4.2: commit what a majority of voters has, if it is of the current term. */
  #maybeCommit(): void {
    if (this.#log.maybeCommit(this.#tracker.committedIndex(), this.#term)) this.#onCommitAdvanced();
  }

  #broadcastAppend(): void {
    for (const nodeId of this.#tracker.progress.keys()) {
      if (nodeId === this.#id || !this.#maybeSendAppend(nodeId, true)) continue;
      // A follower in the replicate state takes more than one message when the window allows.
      while (this.#maybeSendAppend(nodeId, false));
    }
  }

  #broadcastHeartbeat(): void {
    const readContext = this.#reads.awaitedContext;
    for (const [nodeId, progress] of this.#tracker.progress) {
      if (nodeId === this.#id) continue;
      this.#send({
        type: "Heartbeat",
        term: this.#term,
        from: this.#id,
        to: nodeId,
        // The follower may not have entries beyond its match index (they could conflict).
        commit: Math.min(progress.match, this.#log.committed),
        readContext,
      });
    }
  }

  /**
   * Sends the entries `to` needs next, or a snapshot when they were compacted away. Sends
   * nothing while flow control pauses `to`, or when there is nothing new and `sendIfEmpty`
   * is false. Returns whether a message went out.
   */
  #maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.#tracker.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevLogIndex = progress.next - 1;
    const prevLogTerm = this.#log.term(prevLogIndex);
    if (prevLogTerm === null) return this.#sendSnapshot(to, progress);
    const entries = this.#log.entriesFrom(progress.next, this.#config.maxMessageBytes);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send({
      type: "AppendEntries",
      term: this.#term,
      from: this.#id,
      to,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: this.#log.committed,
    });
    progress.sentEntries(entries.length, prevLogIndex + entries.length);
    return true;
  }

  /** Raft §7: the follower needs compacted entries; send the latest snapshot instead. */
  #sendSnapshot(to: NodeId, progress: Progress): boolean {
    // A follower that has not answered lately may be down: do not ship it a whole snapshot.
    if (!progress.recentActive) return false;
    const snapshot = this.#log.storage.snapshot();
    assert(
      snapshot.metadata.index >= progress.next - 1,
      "the snapshot covers what the follower misses",
      { detail: () => `snapshot ${snapshot.metadata.index}, follower next ${progress.next}` },
    );
    this.#send({ type: "InstallSnapshot", term: this.#term, from: this.#id, to, snapshot });
    progress.becomeSnapshot(snapshot.metadata.index);
    return true;
  }

  #handleAppendResponse(message: AppendEntriesResponse): void {
    const progress = this.#tracker.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (!message.success) {
      this.#handleAppendRejection(message, progress);
      return;
    }
    const probeAnswered = progress.state === "probe" && progress.match === message.matchIndex;
    if (!progress.maybeUpdate(message.matchIndex) && !probeAnswered) return;
    if (progress.state === "probe") {
      progress.becomeReplicate();
    } else if (progress.state === "snapshot" && progress.match + 1 >= this.#log.firstIndex()) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === "replicate") {
      progress.inflights.freeLE(message.matchIndex);
    }
    this.#maybeCommit();
    if (this.#role !== "leader") return;
    // Stream whatever else the window allows; each send moves `next`, so this ends.
    while (this.#maybeSendAppend(message.from, false));
    if (message.from === this.#leadTransferee && progress.match === this.#log.lastIndex()) {
      this.#sendTimeoutNow(message.from);
    }
  }

  #handleAppendRejection(message: AppendEntriesResponse, progress: Progress): void {
    // The follower's hint names its last index that may match and that entry's term; skip
    // back in our log past entries whose terms are above it (they cannot match).
    const matchHint = message.hintTerm > 0
      ? this.#log.findConflictByTerm(message.hintIndex, message.hintTerm).index
      : message.hintIndex;
    if (!progress.maybeDecreaseTo(message.rejectedIndex, matchHint)) return;
    if (progress.state === "replicate") progress.becomeProbe();
    this.#maybeSendAppend(message.from, true);
  }

  #handleHeartbeatResponse(message: HeartbeatResponse): void {
    const progress = this.#tracker.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.probeSent = false;
    // AppendEntries may have been lost with the window full: free one slot per heartbeat
    // round so that replication always makes progress (the follower rejects on a gap).
    if (progress.state === "replicate" && progress.inflights.full()) {
      progress.inflights.freeFirstOne();
    }
    if (progress.match < this.#log.lastIndex() || progress.state === "probe") {
      this.#maybeSendAppend(message.from, true);
    }
    if (message.readContext > 0) {
      this.#reads.acknowledge(message.from, message.readContext);
      for (const read of this.#reads.release(this.#tracker.voters, this.#id)) {
        this.#answerRead(read, read.index);
      }
    }
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#send({ type: "TimeoutNow", term: this.#term, from: this.#id, to });
  }

  // ---------------------------------------------------------------------------------------
  // ReadIndex, leader side (thesis §6.4)

  #handleRead(read: DeferredRead): void {
    // Until the leader has committed an entry of its term it does not know the commit index
    // of the cluster (thesis §6.4 step 1): the read waits for the no-op to commit.
    if (!this.#committedInCurrentTerm()) {
      this.#reads.defer(read);
      return;
    }
    const index = this.#log.committed;
    if (this.#tracker.voters.length === 1 && this.#tracker.isVoter(this.#id)) {
      this.#answerRead(read, index);
      return;
    }
    this.#reads.add(read, index);
    this.#readHeartbeatPending = true;
  }

  #answerRead(read: DeferredRead, index: number): void {
    if (read.from === this.#id) {
      this.#readStates.push({ requestId: read.requestId, index });
    } else {
      this.#send({
        type: "ReadIndexResponse",
        term: this.#term,
        from: this.#id,
        to: read.from,
        requestId: read.requestId,
        index,
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Ready bookkeeping

  #send(message: Message): void {
    this.#messages.push(message);
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed };
  }

  #hardStateChanged(): boolean {
    const previous = this.#previousHardState;
    return previous.term !== this.#term || previous.vote !== this.#vote ||
      previous.commit !== this.#log.committed;
  }

  #softStateChanged(): boolean {
    return this.#previousSoftState.role !== this.#role ||
      this.#previousSoftState.leaderId !== this.#leaderId;
  }

  #checkInvariants(): void {
    const log = this.#log;
    assert(
      log.applied <= log.committed && log.committed <= log.lastIndex(),
      "applied <= commit <= lastIndex",
      {
        detail: () =>
          `applied ${log.applied}, commit ${log.committed}, last index ${log.lastIndex()}`,
      },
    );
    assert(this.#role !== "leader" || this.#leaderId === this.#id, "a leader follows itself");
  }
}

/**
 * Splits `messages` into a leader's replication traffic (AppendEntries and heartbeats), the
 * only messages that may leave before the Ready that holds them is persisted (see
 * `Ready.messagesBeforePersist`), and the rest, in one pass.
 */
function partitionReplication(messages: Message[]): [Message[], Message[]] {
  const replication: Message[] = [];
  const rest: Message[] = [];
  for (const message of messages) {
    if (message.type === "AppendEntries" || message.type === "Heartbeat") replication.push(message);
    else rest.push(message);
  }
  return [replication, rest];
}
