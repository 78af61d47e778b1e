import assert from "node:assert/strict";
import fc from "fast-check";
import type { Advert } from "./advert.ts";
import {
  CANDIDATE_TTL_MAX_MS,
  CandidateTable,
  type CandidateVerdict,
  isUsable,
} from "./candidate_table.ts";

function advert(nodeId: number, clusterId: string | null = null): Advert {
  return {
    nodeId,
    clusterId,
    p2pNodeId: nodeId.toString(16).padStart(64, "0"),
    addresses: [`192.0.2.${nodeId % 250}:7001`],
    httpPort: 8001,
    issuedAtMs: null,
    signature: null,
  };
}

const VERDICTS: CandidateVerdict[] = [
  "verified",
  "accepted",
  "unsigned",
  "bad_signature",
  "stale",
  "other_cluster",
];

Deno.test("CandidateTable keeps a candidate until its TTL, capped at 120 s, and forgets it on goodbye", () => {
  const table = new CandidateTable();
  assert.equal(
    table.upsert("a", { advert: advert(1), verdict: "accepted", ttlMs: 5_000, nowMs: 0 }),
    "added",
  );
  assert.equal(
    table.upsert("b", { advert: advert(2), verdict: "accepted", ttlMs: 1e9, nowMs: 0 }),
    "added",
  );
  assert.deepEqual(table.list(4_999).map((candidate) => candidate.instance), ["a", "b"]);
  assert.deepEqual(table.list(5_000).map((candidate) => candidate.instance), ["b"]);
  assert.deepEqual(table.list(CANDIDATE_TTL_MAX_MS).map((candidate) => candidate.instance), []);
  assert.equal(table.expire(5_000), 1);
  assert.equal(table.remove("b"), true);
  assert.equal(table.size, 0);
});

Deno.test("CandidateTable never lets a record that is not usable replace a usable one", () => {
  const table = new CandidateTable();
  table.upsert("a", { advert: advert(1, "c1"), verdict: "verified", ttlMs: 120_000, nowMs: 0 });
  const forged = { ...advert(1, "c1"), p2pNodeId: "f".repeat(64) };
  assert.equal(
    table.upsert("a", { advert: forged, verdict: "bad_signature", ttlMs: 120_000, nowMs: 10 }),
    "kept_usable",
  );
  assert.equal(table.list(20)[0]?.advert.p2pNodeId, advert(1).p2pNodeId);
  assert.equal(
    table.upsert("a", { advert: advert(1, "c2"), verdict: "verified", ttlMs: 120_000, nowMs: 30 }),
    "updated",
  );
  assert.equal(table.list(40)[0]?.advert.clusterId, "c2");
});

Deno.test("CandidateTable stays bounded and keeps usable candidates under any flood", () => {
  const capacity = 8;
  const record = fc.record({
    instance: fc.integer({ min: 0, max: 40 }).map((n) => `i${n}`),
    nodeId: fc.integer({ min: 1, max: 50 }),
    verdict: fc.constantFrom(...VERDICTS),
    ttlMs: fc.integer({ min: 0, max: 200_000 }),
    stepMs: fc.integer({ min: 0, max: 5_000 }),
  });
  fc.assert(fc.property(fc.array(record, { maxLength: 200 }), (records) => {
    const table = new CandidateTable(capacity);
    let nowMs = 0;
    const usableAlive = new Map<string, number>();
    for (const entry of records) {
      nowMs += entry.stepMs;
      const outcome = table.upsert(entry.instance, {
        advert: advert(entry.nodeId),
        verdict: entry.verdict,
        ttlMs: entry.ttlMs,
        nowMs,
      });
      assert.ok(table.size <= capacity);
      if (outcome === "added" || outcome === "updated") {
        if (isUsable(entry.verdict)) {
          usableAlive.set(entry.instance, nowMs + Math.min(entry.ttlMs, CANDIDATE_TTL_MAX_MS));
        } else usableAlive.delete(entry.instance);
      }
      // A usable candidate alive now is still listed: a flood cannot push it out.
      const listed = new Set(table.list(nowMs).map((candidate) => candidate.instance));
      for (const [instance, expiresAtMs] of usableAlive) {
        if (expiresAtMs > nowMs) assert.ok(listed.has(instance), `${instance} was pushed out`);
      }
    }
  }));
});

Deno.test("CandidateTable refuses a new record when every entry is usable and alive", () => {
  const table = new CandidateTable(2);
  table.upsert("a", { advert: advert(1), verdict: "accepted", ttlMs: 60_000, nowMs: 0 });
  table.upsert("b", { advert: advert(2), verdict: "verified", ttlMs: 60_000, nowMs: 0 });
  assert.equal(
    table.upsert("c", { advert: advert(3), verdict: "accepted", ttlMs: 60_000, nowMs: 1 }),
    "table_full",
  );
  assert.equal(
    table.upsert("c", { advert: advert(3), verdict: "accepted", ttlMs: 60_000, nowMs: 60_000 }),
    "added",
  );
});
