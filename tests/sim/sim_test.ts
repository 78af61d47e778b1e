/**
 * The fixed table of simulation runs that `deno task test` replays: a few seeds of every
 * fault profile, the regression seeds of bugs the simulator found, and runs with deliberate
 * sabotage that must fail, which shows the checks can. `deno task sim --seeds N` sweeps
 * many more seeds.
 */

import assert from "node:assert/strict";
import { type Profile, type Sabotage, type ScenarioChoices, scenarioFor } from "./scenario.ts";
import { runSimulation, SimulationFailure, type SimulationReport } from "./simulation.ts";

interface TableRow {
  profile: Profile;
  seed: number;
  nodes?: number;
  /** Why the row is there, when it is a regression. */
  regression?: string;
}

const TABLE: TableRow[] = [
  { profile: "calm", seed: 1 },
  { profile: "calm", seed: 2, nodes: 5 },
  { profile: "crashes", seed: 1 },
  { profile: "crashes", seed: 2 },
  { profile: "crashes", seed: 3, nodes: 5 },
  { profile: "partitions", seed: 1 },
  { profile: "partitions", seed: 4 },
  { profile: "partitions", seed: 3, nodes: 5 },
  { profile: "lossy", seed: 1 },
  { profile: "lossy", seed: 2 },
  { profile: "membership", seed: 1 },
  { profile: "membership", seed: 4 },
  { profile: "membership", seed: 3, nodes: 5 },
  { profile: "stragglers", seed: 3 },
  { profile: "stragglers", seed: 4, nodes: 5 },
  { profile: "storm", seed: 1 },
  { profile: "storm", seed: 2, nodes: 5 },
  { profile: "mixed", seed: 1 },
  { profile: "mixed", seed: 2 },
  { profile: "mixed", seed: 3 },
  { profile: "mixed", seed: 4 },
  { profile: "mixed", seed: 5 },
  { profile: "mixed", seed: 6 },
  {
    profile: "mixed",
    seed: 143,
    regression: "a candidate that cannot win answers a stale RequestVote, so a leader is elected",
  },
  {
    profile: "mixed",
    seed: 502,
    regression: "a history with 30 unknown outcomes out of 32 is checked, not left inconclusive",
  },
  {
    profile: "mixed",
    seed: 871,
    regression: "a learner catching up slowly through 256-byte messages is progress, not a stall",
  },
];

/** Runs a scenario; a failure becomes an assertion error carrying the replay command and the trace. */
async function run(
  seed: number,
  choices: ScenarioChoices,
  followTrace?: (line: string) => void,
): Promise<SimulationReport> {
  try {
    return await runSimulation(
      scenarioFor(seed, choices),
      followTrace === undefined ? {} : { followTrace },
    );
  } catch (error) {
    if (!(error instanceof SimulationFailure)) throw error;
    const flags = Object.entries(choices).map(([name, value]) => `--${name} ${value}`).join(" ");
    const trace = error.trace.slice(-40).join("\n");
    throw new assert.AssertionError({
      message: `${error.message}\nreplay: deno task sim --seed ${seed} ${flags}\n${trace}`,
    });
  }
}

/** The faults a profile promises must have happened, or the row tests less than it says. */
function assertProfileExercised(profile: Profile, report: SimulationReport): void {
  if (profile === "crashes") assert.ok(report.faults.crashes > 0, "no crash happened");
  if (profile === "partitions") assert.ok(report.faults.partitions > 0, "no partition happened");
  if (profile === "lossy") assert.ok(report.network.dropped > 0, "no message was dropped");
  if (profile === "membership") {
    assert.ok(report.membershipChanges.removeNode > 0, "no member was removed");
    // The node's own RPC service ran: seeds that are followers forwarded joins to the
    // leader, and removed nodes learned of their removal from the others' status.
    assert.ok(
      report.rpc.joinCalls > report.joinRequests,
      `no join was forwarded: ${report.joinRequests} requests, ${report.rpc.joinCalls} calls`,
    );
    assert.ok(report.removedNodes.watch > 0, "no removal watch found its node removed");
    // The production joiner searched for seeds and retried; voters left by themselves; the
    // transport refused the Raft messages of nodes that were no members in its view.
    assert.ok(
      report.joiners.seedAttemptsFailed + report.joiners.retried > 0,
      `the joiners never searched again nor retried: ${JSON.stringify(report.joiners)}`,
    );
    assert.ok(report.leaves > 0, "no voter left by cluster.leave");
    assert.ok(report.raftMessagesRefused > 0, "no Raft message was refused");
  }
  if (profile === "storm") {
    // The operator asserts the cap at every step; settling required the learners beyond it.
    assert.ok(
      report.membershipChanges.addLearner > report.membershipChanges.promoteLearner,
      `machines beyond the voter cap stayed learners: ${JSON.stringify(report.membershipChanges)}`,
    );
  }
}

for (const row of TABLE) {
  const nodes = row.nodes === undefined ? "" : `, ${row.nodes} nodes`;
  const name = row.regression ?? "keeps every safety property and a linearizable history";
  Deno.test(`simulation ${row.profile} seed ${row.seed}${nodes}: ${name}`, async () => {
    const choices: ScenarioChoices = { profile: row.profile };
    if (row.nodes !== undefined) choices.nodes = row.nodes;
    const report = await run(row.seed, choices);
    assert.equal(report.linearizability, "linearizable");
    // Hostile mixed seeds may keep the cluster down for most of a run; the others may not.
    const operationsMin = row.profile === "mixed" ? 1 : 50;
    assert.ok(
      report.operationsChecked >= operationsMin,
      `only ${report.operationsChecked} operations were checked`,
    );
    assert.ok(report.membershipChanges.promoteLearner >= 1, "the cluster never grew");
    assertProfileExercised(row.profile, report);
  });
}

Deno.test("simulation replays a seed identically, event for event", async () => {
  const choices: ScenarioChoices = { profile: "mixed", steps: 1500 };
  const replay = async () => {
    const events: string[] = [];
    const report = await run(7, choices, (line) => events.push(line));
    return { report, events };
  };
  const first = await replay();
  const second = await replay();
  assert.ok(
    first.events.some((line) => line.includes("operator: node")),
    "the production membership policy acted",
  );
  assert.deepEqual(second.report, first.report);
  assert.deepEqual(second.events, first.events);
});

/** Runs that must fail: the sabotage breaks an assumption Raft or the clients rely on. */
async function sabotagedFailure(
  seed: number,
  profile: Profile,
  sabotage: Sabotage,
): Promise<SimulationFailure> {
  try {
    await runSimulation(scenarioFor(seed, { profile, sabotage }));
  } catch (error) {
    if (error instanceof SimulationFailure) return error;
    throw error;
  }
  throw new assert.AssertionError({
    message: `seed ${seed} with ${sabotage} passed: the checks missed it`,
  });
}

Deno.test("simulation catches stale reads served without ReadIndex, naming the read", async () => {
  const failure = await sabotagedFailure(3, "mixed", "staleReads");
  assert.equal(failure.kind, "linearizability");
  assert.match(failure.message, /get\("k\d"\) → .*← returns at the cut/);
});

Deno.test("simulation catches a disk that loses acknowledged writes on restart", async () => {
  const kinds: string[] = [];
  for (const seed of [2, 3, 15]) {
    kinds.push((await sabotagedFailure(seed, "crashes", "amnesia")).kind);
  }
  for (const kind of kinds) {
    assert.ok(["safety", "invariant", "linearizability"].includes(kind), kind);
  }
  assert.ok(kinds.includes("safety"), `kinds: ${kinds}`);
});

Deno.test("simulation catches a follower's vote sent before its fsync, then lost in a crash", async () => {
  for (const seed of [2, 6, 9]) {
    const failure = await sabotagedFailure(seed, "crashes", "earlyVotes");
    assert.equal(failure.kind, "safety");
    assert.match(failure.message, /granted its vote in term \d+ to \d+, but restarts with/);
  }
});
