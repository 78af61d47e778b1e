import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decideFormation,
  type FormationCandidate,
  type FormationDecision,
  type FormationView,
} from "./formation.ts";

function view(overrides: Partial<FormationView>): FormationView {
  return {
    selfNodeId: 2,
    bootstrapExpect: null,
    clusterId: null,
    elapsedMs: 0,
    discoveryWaitMs: 1_000,
    candidates: [],
    ...overrides,
  };
}

function candidate(nodeId: number, clusterId: string | null = null, usable = true) {
  return { nodeId, clusterId, usable };
}

Deno.test("decideFormation() joins the lowest usable candidate in a cluster, honouring --cluster-id", () => {
  const candidates = [
    candidate(5, "c1"),
    candidate(3, "c2"),
    candidate(1, "c1", false),
    candidate(4, null),
  ];
  assert.deepEqual(decideFormation(view({ candidates })), {
    kind: "join",
    nodeId: 3,
    clusterId: "c2",
  });
  assert.deepEqual(decideFormation(view({ candidates, clusterId: "c1" })), {
    kind: "join",
    nodeId: 5,
    clusterId: "c1",
  });
  assert.equal(decideFormation(view({ candidates, clusterId: "c3" })).kind, "wait");
});

Deno.test("decideFormation() without --bootstrap-expect founds once --discovery-wait passed with nothing to join", () => {
  assert.equal(decideFormation(view({ elapsedMs: 999 })).kind, "wait");
  assert.equal(decideFormation(view({ elapsedMs: 1_000 })).kind, "found");
  assert.equal(
    decideFormation(view({ elapsedMs: 5_000, candidates: [candidate(1, "c1", false)] })).kind,
    "found",
  );
});

Deno.test("decideFormation() with --bootstrap-expect waits for N nodes, then the lowest founds", () => {
  const expect3 = { bootstrapExpect: 3, elapsedMs: 60_000 };
  assert.equal(decideFormation(view({ ...expect3, candidates: [candidate(1)] })).kind, "wait");
  assert.equal(
    decideFormation(view({ ...expect3, candidates: [candidate(1), candidate(3, null, false)] }))
      .kind,
    "wait",
  );
  assert.equal(
    decideFormation(view({ ...expect3, selfNodeId: 1, candidates: [candidate(2), candidate(3)] }))
      .kind,
    "found",
  );
  const follower = decideFormation(view({ ...expect3, candidates: [candidate(1), candidate(3)] }));
  assert.deepEqual(follower, { kind: "wait", reason: "node 1 founds the cluster; waiting for it" });
});

/**
 * Simulates N nodes started together with `--bootstrap-expect N`. Each step, some node
 * hears one advert it has not heard (the order is arbitrary, so nodes see different
 * prefixes), or a node that decided acts on its decision: a founder then advertises a
 * cluster, a joiner joins it. Returns the ids that founded, and each node's end state.
 */
function simulate(nodeIds: number[], order: [number, number][]) {
  const clusterOf = new Map<number, string | null>(nodeIds.map((id) => [id, null]));
  const heard = new Map<number, Set<number>>(nodeIds.map((id) => [id, new Set()]));
  const founders: number[] = [];
  const decide = (self: number): FormationDecision =>
    decideFormation({
      selfNodeId: self,
      bootstrapExpect: nodeIds.length,
      clusterId: null,
      elapsedMs: 0,
      discoveryWaitMs: 1_000,
      candidates: [...heard.get(self)!].map((id): FormationCandidate => ({
        nodeId: id,
        clusterId: clusterOf.get(id) ?? null,
        usable: true,
      })),
    });
  const act = (self: number) => {
    if (clusterOf.get(self) !== null) return;
    const decision = decide(self);
    if (decision.kind === "found") {
      founders.push(self);
      clusterOf.set(self, `cluster-of-${self}`);
    } else if (decision.kind === "join") clusterOf.set(self, decision.clusterId);
  };
  // Arrivals in the generated order, each followed by the hearing node acting.
  for (const [listenerIndex, speakerIndex] of order) {
    const listener = nodeIds[listenerIndex % nodeIds.length]!;
    const speaker = nodeIds[speakerIndex % nodeIds.length]!;
    if (listener !== speaker) heard.get(listener)!.add(speaker);
    act(listener);
  }
  // Then everyone hears everyone (mDNS answers and re-announces), acting until stable.
  for (let round = 0; round < nodeIds.length + 1; round++) {
    for (const listener of nodeIds) {
      for (const speaker of nodeIds) if (listener !== speaker) heard.get(listener)!.add(speaker);
      act(listener);
    }
  }
  return { founders, clusterOf };
}

Deno.test("--bootstrap-expect N: in any order of arrival exactly one node founds, the lowest, and all end in its cluster", () => {
  const nodeIds = fc.uniqueArray(fc.integer({ min: 1, max: 1_000 }), {
    minLength: 1,
    maxLength: 7,
  });
  const order = fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 60 });
  fc.assert(
    fc.property(nodeIds, order, (ids, arrivals) => {
      const { founders, clusterOf } = simulate(ids, arrivals);
      const lowest = Math.min(...ids);
      assert.deepEqual(founders, [lowest]);
      for (const id of ids) assert.equal(clusterOf.get(id), `cluster-of-${lowest}`);
    }),
    { numRuns: 500 },
  );
});
