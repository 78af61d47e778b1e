/**
 * `ClusterError`: why a cluster operation (a write, a read, a membership change) did not
 * succeed, with a code that travels over RPC and tells the caller what to do next.
 *
 * @module
 */

import type { NodeId } from "../../raft/types.ts";

/** What went wrong, from the caller's point of view. */
export type ClusterErrorCode =
  /** This node does not lead; `leaderId` says who does, if known. Retry there. */
  | "not_leader"
  /** No leader is known (election in progress, or this node is cut off). Retry later. */
  | "no_leader"
  /** The deadline passed; for a write, whether it took effect is unknown. */
  | "timeout"
  /** Leadership changed before the write committed: it did not take effect. Safe to retry. */
  | "dropped"
  /** A limit was reached (uncommitted bytes, pending reads). Retry after a pause. */
  | "overloaded"
  /** The request cannot be served as asked; retrying will not help. */
  | "invalid"
  /** A membership change is in progress; this one waits its turn or is retried. */
  | "busy"
  /** The node is stopping. */
  | "stopping"
  /** An invite ticket is used, expired, revoked or unknown; the message says which. */
  | "invite_refused"
  /**
   * The member that forwarded the request was removed from the cluster (and does not know
   * it yet). The request itself may be fine: retry through another member.
   */
  | "not_member"
  /**
   * This node's disk is full: it refuses writes and reads until space is freed (and then
   * serves again by itself). Another member can serve the request.
   */
  | "disk_full";

/** A cluster operation failed; `code` says how, `leaderId` where to retry (when known). */
export class ClusterError extends Error {
  override name = "ClusterError";
  readonly code: ClusterErrorCode;
  /** The leader this node knows of, or `null`. */
  readonly leaderId: NodeId | null;
  /** How long the caller should wait before retrying (`busy`), or `null` for its own backoff. */
  readonly retryAfterMs: number | null;

  /** `message` is one line for an operator. */
  constructor(
    code: ClusterErrorCode,
    message: string,
    options: { leaderId?: NodeId | null; retryAfterMs?: number | null } = {},
  ) {
    super(message);
    this.code = code;
    this.leaderId = options.leaderId ?? null;
    this.retryAfterMs = options.retryAfterMs ?? null;
  }
}
