/**
 * Invariant checks, shared by the Raft core, storage, transport and auth (so it lives here,
 * not in `src/raft/`; it stays pure, and the core's purity test checks it too). They stay
 * on in production: a violated invariant means the node's view of the log can no longer be
 * trusted, and stopping is safer than replicating or applying a corrupt log.
 *
 * @module
 */

/** Thrown when an invariant of the Raft core does not hold. `invariant` names which one. */
export class InvariantViolation extends Error {
  /** Always `"InvariantViolation"`. */
  override name = "InvariantViolation";
  /** The invariant that failed, e.g. `"applied <= commit"`. */
  readonly invariant: string;

  /** `invariant` names the rule; `detail` gives the values that broke it. */
  constructor(invariant: string, detail: string) {
    super(
      detail === ""
        ? `invariant violated: ${invariant}`
        : `invariant violated: ${invariant} (${detail})`,
    );
    this.invariant = invariant;
  }
}

/** Optional context of an `assert`. */
export interface AssertOptions {
  /** Builds the values that broke the invariant; called only on failure, so it costs nothing otherwise. */
  detail?: () => string;
}

/** Throws `InvariantViolation` naming `invariant` when `condition` is false. */
export function assert(
  condition: boolean,
  invariant: string,
  options: AssertOptions = {},
): asserts condition {
  if (!condition) {
    throw new InvariantViolation(invariant, options.detail === undefined ? "" : options.detail());
  }
}
