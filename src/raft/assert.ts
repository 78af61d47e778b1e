/**
 * Invariant checks for the Raft core. They stay on in production: a violated invariant
 * means the node's view of the log can no longer be trusted, and stopping is safer than
 * replicating or applying a corrupt log.
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

/**
 * Throws `InvariantViolation` naming `invariant` when `condition` is false. `detail` is a
 * function so that building the message costs nothing on the hot path when all is well.
 */
export function assert(
  condition: boolean,
  invariant: string,
  detail?: () => string,
): asserts condition {
  if (!condition) throw new InvariantViolation(invariant, detail === undefined ? "" : detail());
}
