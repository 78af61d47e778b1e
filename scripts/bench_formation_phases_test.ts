import assert from "node:assert/strict";
import type { NodeProcess } from "../tests/helpers/node_process.ts";
import { formationPhases } from "./bench.ts";

const SPAWNED_AT_MS = Date.parse("2026-12-06T14:00:00.000Z");

/** A node whose log holds `lines`, each `[ms after the spawn, message]`: all a phase reads. */
function nodeWithLog(id: number, lines: [number, string][]): NodeProcess {
  const records = lines.map(([ms, message]) => ({
    timestamp: new Date(SPAWNED_AT_MS + ms).toISOString(),
    message,
    properties: message.startsWith("ready ") ? { startMs: 40 } : {},
  }));
  return { id, logRecords: () => records } as unknown as NodeProcess;
}

Deno.test("formationPhases() gives the founder's start, then the phases of the joiner promoted last", () => {
  const founder = nodeWithLog(1, [
    [300, "founded cluster c with this node as its only voter"],
    [310, "ready node_id=1"],
    [400, "node 3 joined as a learner at index 5"],
    [450, "node 2 joined as a learner at index 6"],
    [500, "node 3 promoted to voter at index 7"],
    [560, "node 2 promoted to voter at index 8"],
  ]);
  const early = nodeWithLog(3, [
    [280, "ready node_id=3"],
    [390, "connected to seed 127.0.0.1:1 (node 1, direct path)"],
    [510, "promoted to voter: the join is complete"],
  ]);
  const late = nodeWithLog(2, [
    [290, "ready node_id=2"],
    [440, "connected to seed 127.0.0.1:1 (node 1, direct path)"],
    [570, "promoted to voter: the join is complete"],
  ]);

  const phases = formationPhases([founder, early, late], SPAWNED_AT_MS);

  assert.deepStrictEqual(Object.fromEntries(phases), {
    "founder: cluster founded": 300,
    "founder: ready": 310,
    "last joiner: startNode (boot, module loading done)": 250,
    "last joiner: listening (ready: storage, HTTP)": 290,
    "last joiner: seed connected (Iroh connect)": 440,
    "last joiner: learner added (leader applied it)": 450,
    "last joiner: promoted (leader applied it)": 560,
    "last joiner: voter (joiner's own log)": 570,
  });
});
