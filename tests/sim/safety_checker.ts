/**
 * `SafetyChecker`: the Raft safety properties (Raft §5.2, §5.3, §5.4, Figure 3), checked
 * against what the simulated nodes do, incrementally, as they do it:
 *
 * - Election Safety: at most one leader per term.
 * - Log Matching: two logs holding an entry with the same index and term hold the same
 *   entry there and agree on everything before it. Checked by induction: every (index,
 *   term) ever persisted must always carry the same content and follow the same term.
 * - Committed entries never change: the first entry seen committed at an index is the only
 *   one any node may ever apply, hold below its commit index, or snapshot over there.
 * - Leader Completeness: a leader's log holds every entry committed before its term.
 * - State Machine Safety: nodes that apply an index get the same result, and state
 *   machine images taken at the same applied index are identical.
 * - No acknowledged write is lost: an acknowledged entry is the committed one at its index.
 *
 * It is fed through a narrow interface (ids, terms, entries, digests) so that it knows
 * nothing of how nodes are built.
 *
 * @module
 */

import type { Entry, NodeId, SnapshotMetadata } from "../../src/raft/types.ts";

/** A broken safety property; `property` names it, the message gives the evidence. */
export class SafetyViolation extends Error {
  override name = "SafetyViolation";
  /** The property that failed, e.g. `"election safety"`. */
  readonly property: string;

  /** `property` names the rule; `detail` the nodes, indexes and terms that broke it. */
  constructor(property: string, detail: string) {
    super(`${property} violated: ${detail}`);
    this.property = property;
  }
}

/** The read access to one node's log the checker needs. */
export interface LogView {
  /** The term at `index`, `null` when compacted or beyond the last index. */
  term(index: number): number | null;
  /** The index the log's snapshot covers up to (0 when never compacted). */
  snapshotIndex(): number;
}

interface LoggedEntry {
  previousTerm: number;
  content: string;
}

interface CommittedEntry {
  term: number;
  content: string;
  /** The lowest term of a node that knew the entry committed: it was committed in this term or earlier. */
  knownByTerm: number;
  /** Which node first reported it, for messages. */
  witness: NodeId;
}

/** Watches a simulated cluster and throws `SafetyViolation` at the first unsafe event. */
export class SafetyChecker {
  readonly #leaderOfTerm = new Map<number, NodeId>();
  readonly #logged = new Map<string, LoggedEntry>();
  readonly #committed = new Map<number, CommittedEntry>();
  readonly #appliedResults = new Map<number, { result: string; witness: NodeId }>();
  readonly #stateImages = new Map<number, { digest: string; witness: NodeId }>();
  readonly #leadershipsChecked = new Set<string>();
  #committedIndexMax = 0;

  /** How many terms had a leader. */
  get termsWithLeader(): number {
    return this.#leaderOfTerm.size;
  }

  /** Highest index seen committed by any node. */
  get committedIndexMax(): number {
    return this.#committedIndexMax;
  }

  /** Election Safety (Raft §5.2): `nodeId` is leader in `term`; nobody else may be. */
  observeLeader(nodeId: NodeId, term: number): void {
    const leader = this.#leaderOfTerm.get(term);
    if (leader === undefined) this.#leaderOfTerm.set(term, nodeId);
    else if (leader !== nodeId) {
      throw new SafetyViolation(
        "election safety",
        `nodes ${leader} and ${nodeId} are both leaders of term ${term}`,
      );
    }
  }

  /**
   * Log Matching (Raft §5.3): `entries` were just persisted to `nodeId`'s log after an entry
   * of term `previousTerm`.
   */
  observePersisted(nodeId: NodeId, entries: readonly Entry[], previousTerm: number): void {
    let previous = previousTerm;
    for (const entry of entries) {
      const name = `${entry.index}:${entry.term}`;
      const logged = { previousTerm: previous, content: entryContent(entry) };
      const earlier = this.#logged.get(name);
      if (earlier === undefined) this.#logged.set(name, logged);
      else if (earlier.previousTerm !== logged.previousTerm || earlier.content !== logged.content) {
        throw new SafetyViolation(
          "log matching",
          `node ${nodeId} persisted index ${entry.index} term ${entry.term} as ${logged.content} after term ` +
            `${logged.previousTerm}; another log holds ${earlier.content} after term ${earlier.previousTerm}`,
        );
      }
      previous = entry.term;
    }
  }

  /**
   * `nodeId`, in term `nodeTerm`, holds `entry` at or below its commit index (or applied
   * it): the entry is committed, and was so by term `nodeTerm` at the latest.
   */
  observeCommitted(nodeId: NodeId, entry: Entry, nodeTerm: number): void {
    const content = entryContent(entry);
    const committed = this.#committed.get(entry.index);
    if (committed === undefined) {
      this.#committed.set(entry.index, {
        term: entry.term,
        content,
        knownByTerm: nodeTerm,
        witness: nodeId,
      });
      this.#committedIndexMax = Math.max(this.#committedIndexMax, entry.index);
      return;
    }
    committed.knownByTerm = Math.min(committed.knownByTerm, nodeTerm);
    if (committed.term !== entry.term || committed.content !== content) {
      throw new SafetyViolation(
        "committed entries never change",
        `node ${nodeId} has index ${entry.index} committed as term ${entry.term} ${content}; node ` +
          `${committed.witness} had it as term ${committed.term} ${committed.content}`,
      );
    }
  }

  /** `nodeId` installed or took a snapshot covering the log up to `metadata.index`. */
  observeSnapshot(nodeId: NodeId, metadata: SnapshotMetadata): void {
    const committed = this.#committed.get(metadata.index);
    if (committed !== undefined && committed.term !== metadata.term) {
      throw new SafetyViolation(
        "committed entries never change",
        `node ${nodeId} has a snapshot at index ${metadata.index} term ${metadata.term}; the entry ` +
          `committed there has term ${committed.term}`,
      );
    }
  }

  /**
   * Leader Completeness (Raft §5.4.1): `nodeId`, leader of `term`, must hold every entry
   * committed in an earlier term. Checked once per leadership, when it is first seen. An
   * entry counts only when some node knew it committed while in a term below `term`: a
   * leader whose election completed late need not hold what a later term committed.
   */
  checkLeaderCompleteness(nodeId: NodeId, term: number, log: LogView): void {
    const leadership = `${nodeId}:${term}`;
    if (this.#leadershipsChecked.has(leadership)) return;
    this.#leadershipsChecked.add(leadership);
    for (let index = log.snapshotIndex() + 1; index <= this.#committedIndexMax; index++) {
      const committed = this.#committed.get(index);
      if (committed === undefined || committed.knownByTerm >= term) continue;
      const held = log.term(index);
      if (held !== committed.term) {
        throw new SafetyViolation(
          "leader completeness",
          `node ${nodeId}, leader of term ${term}, has ${
            held === null ? "no entry" : `term ${held}`
          } at index ${index}, committed with term ${committed.term}`,
        );
      }
    }
  }

  /** State Machine Safety (Raft §5.4.3): applying `index` on `nodeId` gave `result`. */
  observeApplied(nodeId: NodeId, index: number, result: string): void {
    const earlier = this.#appliedResults.get(index);
    if (earlier === undefined) this.#appliedResults.set(index, { result, witness: nodeId });
    else if (earlier.result !== result) {
      throw new SafetyViolation(
        "state machine safety",
        `applying index ${index} gave ${result} on node ${nodeId} but ${earlier.result} on node ${earlier.witness}`,
      );
    }
  }

  /** `nodeId`'s state machine, at applied index `index`, has image `digest`. */
  observeStateImage(nodeId: NodeId, index: number, digest: string): void {
    const earlier = this.#stateImages.get(index);
    if (earlier === undefined) this.#stateImages.set(index, { digest, witness: nodeId });
    else if (earlier.digest !== digest) {
      throw new SafetyViolation(
        "state machine safety",
        `state machine images at applied index ${index} differ between node ${earlier.witness} and node ${nodeId}`,
      );
    }
  }

  /** A client was told its write committed at (`index`, `term`): it must be the committed entry there. */
  observeAcknowledged(index: number, term: number, entry: Entry): void {
    const committed = this.#committed.get(index);
    if (
      committed === undefined || committed.term !== term ||
      committed.content !== entryContent(entry)
    ) {
      throw new SafetyViolation(
        "acknowledged writes are kept",
        `a write acknowledged at index ${index} term ${term} is not the entry committed there (${
          committed === undefined ? "none recorded" : `term ${committed.term}`
        })`,
      );
    }
  }
}

/** A printable, comparable rendering of an entry's content (not its position). */
export function entryContent(entry: Entry): string {
  if (entry.type === "normal") return `normal:${hex(entry.data)}`;
  const change = entry.change;
  const context = change.type === "addLearner" ? `:${hex(change.context)}` : "";
  return `${change.type}(${change.nodeId})${context}`;
}

/** `bytes` as lowercase hexadecimal. */
export function hex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
