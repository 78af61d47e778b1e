/**
 * The formation rule: what a new node with mDNS on and no `--peers` does with what it has
 * seen. Pure: the caller passes the candidates and the time waited.
 *
 * 1. A usable candidate in a cluster (the `--cluster-id` one, when given) → join the one
 *    with the lowest node id.
 * 2. With `--bootstrap-expect N`: once this node and the usable candidates in no cluster
 *    are N distinct nodes or more, the lowest id among them founds; the others wait for
 *    it to advertise its cluster, then join it by rule 1. When exactly N nodes start with
 *    `--bootstrap-expect N`, every node that decides sees the same N ids, so only one
 *    founds (the convention of Consul's and Nomad's `bootstrap_expect`).
 * 3. Without it: once `--discovery-wait` has passed with nothing to join, found.
 *
 * @module
 */

/** What the rule reads of a candidate. */
export interface FormationCandidate {
  readonly nodeId: number;
  readonly clusterId: string | null;
  readonly usable: boolean;
}

/** Everything the rule decides on. */
export interface FormationView {
  readonly selfNodeId: number;
  /** `--bootstrap-expect`, or `null`. */
  readonly bootstrapExpect: number | null;
  /** `--cluster-id`, or `null` for any cluster. */
  readonly clusterId: string | null;
  /** Time since the node started looking. */
  readonly elapsedMs: number;
  /** `--discovery-wait`. */
  readonly discoveryWaitMs: number;
  readonly candidates: readonly FormationCandidate[];
}

/** What to do now. */
export type FormationDecision =
  | { readonly kind: "join"; readonly nodeId: number; readonly clusterId: string }
  | { readonly kind: "found" }
  | { readonly kind: "wait"; readonly reason: string };

/**
 * The usable candidates in a cluster (the `clusterId` one, when given) other than this
 * node, lowest node id first: whom a new node may join.
 */
export function joinableCandidates<T extends FormationCandidate>(
  candidates: readonly T[],
  view: { selfNodeId: number; clusterId: string | null },
): T[] {
  return candidates
    .filter((candidate) =>
      candidate.usable && candidate.nodeId !== view.selfNodeId && candidate.clusterId !== null &&
      (view.clusterId === null || candidate.clusterId === view.clusterId)
    )
    .sort((a, b) => a.nodeId - b.nodeId);
}

/** Applies the rule to `view`. */
export function decideFormation(view: FormationView): FormationDecision {
  const joinable = joinableCandidates(view.candidates, view)[0];
  if (joinable !== undefined && joinable.clusterId !== null) {
    return { kind: "join", nodeId: joinable.nodeId, clusterId: joinable.clusterId };
  }
  const others = view.candidates.filter((candidate) =>
    candidate.usable && candidate.nodeId !== view.selfNodeId
  );
  if (view.bootstrapExpect !== null) {
    const unclustered = new Set(
      others.filter((candidate) => candidate.clusterId === null).map((c) => c.nodeId),
    );
    unclustered.add(view.selfNodeId);
    const lowest = Math.min(...unclustered);
    if (unclustered.size < view.bootstrapExpect) {
      return {
        kind: "wait",
        reason: `--bootstrap-expect ${view.bootstrapExpect}: ${unclustered.size} nodes seen ` +
          `(${[...unclustered].sort((a, b) => a - b).join(", ")})`,
      };
    }
    return lowest === view.selfNodeId
      ? { kind: "found" }
      : { kind: "wait", reason: `node ${lowest} founds the cluster; waiting for it` };
  }
  return view.elapsedMs >= view.discoveryWaitMs
    ? { kind: "found" }
    : { kind: "wait", reason: "browsing for a cluster to join (--discovery-wait)" };
}
