/**
 * `MembershipManager`: the leader's side of membership (DESIGN.md section 6).
 *
 * - `join`: adds a learner, idempotently for the same id and key, refusing the same id
 *   with another key. Answers once the change is applied.
 * - `remove`: removes a member, refusing a removal that would leave fewer reachable
 *   voters than a quorum unless forced.
 * - autopilot: promotes a learner to voter once it has caught up with the leader, up to
 *   the voter cap (the policy is `learnerToPromote` in `autopilot.ts`).
 *
 * It works through a `MembershipRaft` and a `Scheduler`, so that the simulator runs this
 * class itself on its simulated nodes and clock (`tests/sim/sim_node.ts`).
 *
 * One membership change is in flight at a time: requests queue here and each waits its
 * turn (a second joiner waits, it does not fail). A change left uncommitted by a previous
 * leader makes the core refuse new ones for a moment; those are retried until the
 * caller's deadline.
 *
 * Join storms: at most `JOINS_QUEUED_MAX` joins wait in the queue. A joiner beyond them
 * hears `busy` with how long the queue ahead should take to drain (`retryAfterMs`), and
 * comes back then, instead of holding a stream here (and on the follower that forwarded
 * it) until its deadline. Promotions do not wait for the joins to end: one promotion at a
 * time takes its place in the queue, so the voters grow to the cap during a storm.
 *
 * @module
 */

import type { ConfState, MembershipChange, NodeId } from "../../raft/types.ts";
import { isMember } from "../../raft/membership.ts";
import { encodeCommand } from "../../state_machine/commands.ts";
import { encodeMemberInfo, type MemberInfo } from "../../state_machine/member_info.ts";
import {
  describeRefusal,
  encodeInvitedMember,
  type InviteRefusal,
  type InviteUse,
} from "../../state_machine/invites.ts";
import type { ApplyResult } from "../../state_machine/apply_result.ts";
import { getLogger } from "../../log/logging.ts";
import { ClusterError } from "../replication/cluster_error.ts";
import { type MemberDirectory, sameAddresses } from "./member_directory.ts";
import type { MembershipRaft } from "./membership_raft.ts";
import { learnerToPromote, type PromotionPolicy } from "./autopilot.ts";
import type { RaftNodeEvents } from "../replication/raft_node.ts";
import { sleepOn } from "../../util/sleep.ts";
import { type Scheduler, SYSTEM_SCHEDULER, timeoutSignal } from "../../util/scheduler.ts";

const log = getLogger(["blixard", "membership"]);

/** Pause before retrying a change the core refused because another one is uncommitted. */
const BUSY_RETRY_MS = 10;
/**
 * How often the leader looks for learners to promote when nothing happens; the node also
 * looks after every batch of Ready passes, which is what makes a join fast.
 */
export const AUTOPILOT_INTERVAL_MS = 100;
/** How long the autopilot keeps proposing one promotion before the next round tries again. */
const PROMOTION_TIMEOUT_MS = 10_000;
/** Removals a leader remembers, so that a retried remove answers with the removal's index. */
const RECENT_REMOVALS_MAX = 64;
/**
 * How long an appended removal may wait to commit after the request that asked for it gave
 * up (a forced removal waits for a node that is down): its retry waits for the same entry.
 */
const REMOVAL_COMMIT_WAIT_MS = 600_000;
/**
 * Joins that may wait their turn at once. Each holds an RPC stream here (and one on the
 * follower that forwarded it) while it waits; a change takes one commit, tens of ms, so a
 * few queued keep the leader busy without making the last of them wait long.
 */
export const JOINS_QUEUED_MAX = 4;
/** What one membership change is assumed to take before any was timed. */
const CHANGE_MS_INITIAL = 50;
/** Weight of the latest change in the running estimate of a change's duration. */
const CHANGE_MS_WEIGHT = 0.25;
/** Bounds of the pause a busy joiner is asked to wait. */
const RETRY_AFTER_MS_MIN = 50;
const RETRY_AFTER_MS_MAX = 5_000;

/** The leader's membership operations. */
export class MembershipManager {
  readonly #nodeId: NodeId;
  readonly #raft: MembershipRaft;
  readonly #directory: MemberDirectory;
  readonly #scheduler: Scheduler;
  /** The tail of the queue of changes: each starts when the previous one settled. */
  #queue: Promise<unknown> = Promise.resolve();
  #joinsQueued = 0;
  #promotionQueued = false;
  /** A look for a learner to promote is due soon (`autopilotEvents`' `answered`). */
  #lookDue = false;
  /** Running estimate of how long one change takes, queue wait excluded, for `retryAfterMs`. */
  #changeMs = CHANGE_MS_INITIAL;
  readonly #policy: PromotionPolicy;
  /**
   * The index at which this leader removed each of its last removals (at most
   * `RECENT_REMOVALS_MAX`). A client whose remove outlived its attempt deadline retries;
   * the retry finds the node gone and must hear that its removal happened, not "not a
   * member", or the operator is told a removal that succeeded failed.
   */
  readonly #recentRemovals = new Map<NodeId, number>();
  /**
   * Removals in the log and not yet committed, by node. The request that asked may give up
   * first (its attempt deadline); its retry finds the node gone from the latest
   * configuration and waits for this same removal instead of calling it "not a member".
   */
  readonly #pendingRemovals = new Map<NodeId, Promise<{ index: number }>>();

  readonly #inviteRefusal: (use: InviteUse) => InviteRefusal | null;

  /** `scheduler` is the clock its retries and the autopilot's deadline run on (the system's by default). */
  constructor(
    options: {
      nodeId: NodeId;
      raft: MembershipRaft;
      directory: MemberDirectory;
      policy: PromotionPolicy;
      scheduler?: Scheduler;
      /** Why an invite cannot be used now, by the applied state (`KvStateMachine.inviteRefusal`). */
      inviteRefusal?: (use: InviteUse) => InviteRefusal | null;
    },
  ) {
    this.#nodeId = options.nodeId;
    this.#raft = options.raft;
    this.#directory = options.directory;
    this.#scheduler = options.scheduler ?? SYSTEM_SCHEDULER;
    this.#policy = options.policy;
    this.#inviteRefusal = options.inviteRefusal ?? (() => "unknown");
  }

  /**
   * Adds `member` as a learner (leader only). Idempotent for the same id and P2P id; the
   * same id with another P2P id is refused (`invalid`) until the old member is removed.
   * Refused with `busy` and a `retryAfterMs` when `JOINS_QUEUED_MAX` joins already wait.
   */
  async join(member: MemberInfo, signal: AbortSignal): Promise<{ index: number }> {
    if (this.#joinsQueued >= JOINS_QUEUED_MAX) {
      const retryAfterMs = Math.round(
        Math.min(
          RETRY_AFTER_MS_MAX,
          Math.max(RETRY_AFTER_MS_MIN, this.#joinsQueued * this.#changeMs),
        ),
      );
      throw new ClusterError(
        "busy",
        `${this.#joinsQueued} joins are queued ahead of node ${member.nodeId}; retry in ${retryAfterMs} ms`,
        { retryAfterMs },
      );
    }
    this.#joinsQueued++;
    try {
      // Decided when its turn comes, not before: a joiner that asks again while its first
      // request waits in the queue must find itself added, not be refused as a member.
      return await this.#inTurn(() => this.#join(member, signal, null));
    } finally {
      this.#joinsQueued--;
    }
  }

  /**
   * Adds `member` as a learner admitted by the invite ticket whose token hashes to
   * `tokenHash` (leader only), consuming one use of it in the entry that adds the learner.
   * Refused (`invite_refused`) when the ticket is used, expired, revoked or unknown. A
   * member that asks again with its own key is answered as by `join`, without a use.
   */
  joinByInvite(
    member: MemberInfo,
    options: { tokenHash: string; signal: AbortSignal },
  ): Promise<{ index: number }> {
    return this.#inTurn(() => this.#join(member, options.signal, options.tokenHash));
  }

  async #join(
    member: MemberInfo,
    signal: AbortSignal,
    tokenHash: string | null,
  ): Promise<{ index: number }> {
    if (this.#directory.isRevoked(member.p2pNodeId)) {
      throw new ClusterError(
        "invalid",
        `P2P id ${member.p2pNodeId} belongs to a member that was removed, and is revoked: ` +
          "to add this machine again, start it with an empty --data-dir (a new identity.key)",
      );
    }
    const conf = this.#confState();
    const byKey = this.#memberWithKey(conf, member.p2pNodeId);
    if (byKey !== null && byKey !== member.nodeId) {
      throw new ClusterError(
        "invalid",
        `P2P id ${member.p2pNodeId} already belongs to member ${byKey}; a node keeps one id`,
      );
    }
    if (isMember(conf, member.nodeId)) {
      const known = this.#directory.recordOf(member.nodeId);
      if (known !== null && known.p2pNodeId !== member.p2pNodeId) {
        throw new ClusterError(
          "invalid",
          `node id ${member.nodeId} is taken by a member with P2P id ${known.p2pNodeId}: ` +
            `choose another --id, or remove the old member first (blixard cluster remove --id ${member.nodeId})`,
        );
      }
      // Re-joining with the same id and key: nothing to add; refresh its addresses.
      return await this.announce(member, signal);
    }
    if (tokenHash !== null) return await this.#addInvitedLearner(member, tokenHash, signal);
    const result = await this.#proposeUntilAccepted({
      type: "addLearner",
      nodeId: member.nodeId,
      context: encodeMemberInfo(member),
    }, signal);
    log.info("node {nodeId} joined as a learner at index {index}", {
      nodeId: member.nodeId,
      index: result.index,
    });
    return { index: result.index };
  }

  /**
   * Checks the invite against the applied state (every earlier change has been applied:
   * this runs in turn), then proposes the entry that adds the learner and consumes it. A
   * revocation committed between the check and the entry makes the entry refuse the
   * invite; the learner it added anyway is removed again before the joiner hears no.
   */
  async #addInvitedLearner(
    member: MemberInfo,
    tokenHash: string,
    signal: AbortSignal,
  ): Promise<{ index: number }> {
    const use = { tokenHash, nowMs: Date.now() };
    const refused = this.#inviteRefusal(use);
    if (refused !== null) throw inviteRefusedError(refused);
    const result = await this.#proposeUntilAccepted({
      type: "addLearner",
      nodeId: member.nodeId,
      context: encodeInvitedMember(member, use),
    }, signal);
    if (result.type === "membership" && result.inviteRefusal !== undefined) {
      log.warn(
        "node {nodeId} was added by an invite refused when applied ({refusal}): removing it",
        {
          nodeId: member.nodeId,
          refusal: result.inviteRefusal,
        },
      );
      await this.#proposeUntilAccepted({ type: "removeNode", nodeId: member.nodeId }, signal);
      throw inviteRefusedError(result.inviteRefusal);
    }
    log.info("node {nodeId} joined as a learner by invite {hash} at index {index}", {
      nodeId: member.nodeId,
      hash: tokenHash.slice(0, 12),
      index: result.index,
    });
    return { index: result.index };
  }

  /** Records a member's new addresses through the log (leader only). */
  async announce(member: MemberInfo, signal: AbortSignal): Promise<{ index: number }> {
    const known = this.#directory.recordOf(member.nodeId);
    if (known !== null && sameAddresses(known, member)) {
      return { index: this.#raft.status().commit };
    }
    const result = await this.#raft.propose(
      encodeCommand({ type: "setMemberInfo", info: member }),
      { signal },
    );
    if (result.type === "error") throw new ClusterError("invalid", result.error);
    return { index: result.index };
  }

  /**
   * Removes `nodeId` (leader only). Without `force`, refuses when the voters left that
   * the leader has heard from recently would be fewer than a quorum of the new
   * configuration: the cluster would stop accepting writes.
   */
  remove(
    nodeId: NodeId,
    options: { force: boolean; signal: AbortSignal },
  ): Promise<{ index: number }> {
    return this.#inTurn(() => this.#remove(nodeId, options));
  }

  async #remove(
    nodeId: NodeId,
    options: { force: boolean; signal: AbortSignal },
  ): Promise<{ index: number }> {
    const pending = this.#pendingRemovals.get(nodeId);
    if (pending !== undefined) return await removalOrTimeout(pending, options.signal);
    const conf = this.#confState();
    if (!isMember(conf, nodeId)) {
      const removedAt = this.#recentRemovals.get(nodeId);
      if (removedAt !== undefined) return { index: removedAt };
      throw new ClusterError("invalid", `node ${nodeId} is not a member of this cluster`);
    }
    if (conf.voters.length === 1 && conf.voters[0] === nodeId) {
      throw new ClusterError(
        "invalid",
        `node ${nodeId} is the last voter; stop it instead of removing it`,
      );
    }
    if (!options.force) this.#checkQuorumAfterRemoval(conf, nodeId);
    // Once in the log, the removal waits to commit on a deadline of its own, not the
    // request's: the request may give up and a retry wait for it (`#pendingRemovals`).
    const commitWait = timeoutSignal(this.#scheduler, REMOVAL_COMMIT_WAIT_MS);
    const removal = this.#proposeUntilAccepted(
      { type: "removeNode", nodeId },
      options.signal,
      commitWait.signal,
    ).then((result) => {
      log.info("node {nodeId} removed at index {index}", { nodeId, index: result.index });
      this.#recentRemovals.delete(nodeId);
      this.#recentRemovals.set(nodeId, result.index);
      if (this.#recentRemovals.size > RECENT_REMOVALS_MAX) {
        this.#recentRemovals.delete(this.#recentRemovals.keys().next().value!);
      }
      return { index: result.index };
    }).finally(() => {
      commitWait.cancel();
      this.#pendingRemovals.delete(nodeId);
    });
    // The request that asked may give up before the removal settles, and then nobody awaits
    // it: its failure is the caller's to report while one waits, never an unhandled
    // rejection that would end the process.
    removal.catch(() => {});
    this.#pendingRemovals.set(nodeId, removal);
    return await removalOrTimeout(removal, options.signal);
  }

  /**
   * Autopilot: promotes one caught-up, recently active learner to voter while the voters
   * are fewer than the cap. Called periodically; does nothing unless this node leads and
   * no promotion is queued already. Which learner is decided when the promotion's turn
   * comes: the changes queued before it may have changed the configuration.
   */
  promoteCaughtUpLearners(): void {
    if (this.#promotionQueued || this.#raft.softState.role !== "leader") return;
    if (learnerToPromote(this.#raft.status(), this.#policy) === null) return;
    this.#promotionQueued = true;
    const { signal, cancel } = timeoutSignal(this.#scheduler, PROMOTION_TIMEOUT_MS);
    this.#inTurn(async () => {
      const learner = learnerToPromote(this.#raft.status(), this.#policy);
      if (learner === null) return;
      const change = { type: "promoteLearner" as const, nodeId: learner };
      try {
        const result = await this.#proposeUntilAccepted(change, signal);
        log.info("node {nodeId} promoted to voter at index {index}", {
          nodeId: learner,
          index: result.index,
        });
      } catch (error) {
        log.debug("promotion of node {nodeId} not done yet: {error}", { nodeId: learner, error });
      }
    }).finally(() => {
      cancel();
      this.#promotionQueued = false;
    });
  }

  /**
   * The Raft node's events that run the autopilot besides its poll (`startAutopilot`): after
   * each batch of Ready passes, and soon after a peer's answer, once however many arrive
   * meanwhile. An answer can make a learner ready (its first acknowledgement of the log, or
   * its first answer since check-quorum cleared "recently active") with nothing for the core
   * to send or persist, so that no Ready follows it: without this look the promotion waited
   * for the next heartbeat or poll, up to 100 ms of every join.
   */
  autopilotEvents(): Pick<RaftNodeEvents, "afterReady" | "answered"> {
    return {
      afterReady: () => this.promoteCaughtUpLearners(),
      answered: () => {
        if (this.#lookDue || this.#promotionQueued) return;
        this.#lookDue = true;
        this.#scheduler.soon(() => {
          this.#lookDue = false;
          this.promoteCaughtUpLearners();
        });
      },
    };
  }

  /**
   * Runs the autopilot (`promoteCaughtUpLearners`) every `AUTOPILOT_INTERVAL_MS` of the
   * scheduler's time until the returned function is called.
   */
  startAutopilot(): () => void {
    return this.#scheduler.every(AUTOPILOT_INTERVAL_MS, () => this.promoteCaughtUpLearners());
  }

  #checkQuorumAfterRemoval(conf: ConfState, nodeId: NodeId): void {
    const remaining = conf.voters.filter((voter) => voter !== nodeId);
    if (remaining.length === conf.voters.length) return; // a learner: quorum is unaffected
    const active = this.#raft.activePeers();
    active.add(this.#nodeId);
    const reachable = remaining.filter((voter) => active.has(voter)).length;
    const quorum = Math.floor(remaining.length / 2) + 1;
    if (reachable < quorum) {
      throw new ClusterError(
        "invalid",
        `removing node ${nodeId} would leave ${reachable} reachable of ${remaining.length} voters, ` +
          `below the quorum of ${quorum}: the cluster would stop accepting writes; pass --force to remove it anyway`,
      );
    }
  }

  /**
   * Runs `task` once every change queued before it has settled, and times it for the
   * estimate a busy joiner is given.
   */
  #inTurn<T>(task: () => Promise<T>): Promise<T> {
    const run = async () => {
      const startedMs = this.#scheduler.now();
      try {
        return await task();
      } finally {
        const tookMs = this.#scheduler.now() - startedMs;
        this.#changeMs += CHANGE_MS_WEIGHT * (tookMs - this.#changeMs);
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  /**
   * Proposes `change`, again while the core is busy with another, until `signal` aborts;
   * once in the log it waits to be applied until `commitSignal` aborts (`signal` too by
   * default).
   */
  async #proposeUntilAccepted(
    change: MembershipChange,
    signal: AbortSignal,
    commitSignal: AbortSignal = signal,
  ): Promise<ApplyResult> {
    for (;;) {
      signal.throwIfAborted();
      try {
        const result = await this.#raft.proposeMembership(change, { signal: commitSignal });
        if (result.type === "membership" && result.error !== null) {
          log.warn("membership change applied with a warning: {error}", { error: result.error });
        }
        return result;
      } catch (error) {
        if (!(error instanceof ClusterError) || error.code !== "busy") throw error;
        await sleepOn(this.#scheduler, { durationMs: BUSY_RETRY_MS, signal });
      }
    }
  }

  #confState(): ConfState {
    return this.#raft.status().confState;
  }

  #memberWithKey(conf: ConfState, p2pNodeId: string): NodeId | null {
    for (const nodeId of [...conf.voters, ...conf.learners]) {
      if (this.#directory.recordOf(nodeId)?.p2pNodeId === p2pNodeId) return nodeId;
    }
    return null;
  }
}

function inviteRefusedError(refusal: InviteRefusal): ClusterError {
  return new ClusterError("invite_refused", `the invite ticket is ${describeRefusal(refusal)}`);
}

/**
 * `promise`, or a `timeout` `ClusterError` as soon as `signal` aborts (the request gave up;
 * what `promise` stands for may still happen).
 */
function removalOrTimeout<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const timedOut = () =>
    new ClusterError("timeout", "the removal was not applied in time; it may still take effect");
  if (signal.aborted) return Promise.reject(timedOut());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timedOut());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
