/**
 * A join you can watch, with real nodes: the joiner's `/status` `join` shows its failures
 * while no seed answers, and once it is a voter shows its catch-up and no stale error; the
 * leader's `/status` `joins` lists a learner that cannot catch up (the test joins as one,
 * and never takes the log) with its phase and lag, and `blixard cluster status` prints it.
 */

import assert from "node:assert/strict";
import { JOIN_RPC, type StatusJson } from "../../src/transport/cluster_rpcs.ts";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { statusOf, waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup } from "../helpers/node_process.ts";
import { freeBindPort } from "../helpers/ports.ts";
import { RawRpc } from "../helpers/raw_rpc.ts";

const STUCK_LEARNER_ID = 9;

Deno.test("the join view: errors while seeking, catch-up and no stale error once a voter, the leader's joins in flight", async () => {
  const group = new NodeGroup();
  let raw: RawRpc | null = null;
  try {
    const founderPort = await freeBindPort();
    const joiner = await group.start({
      id: 2,
      peers: [`127.0.0.1:${founderPort}`],
      args: ["--join-timeout", "60s"],
    });
    const seeking = await joiner.waitForStatus(
      "a join error while no seed answers",
      (status) => (status as unknown as StatusJson).join?.last_error != null,
    );
    assert.equal((seeking as unknown as StatusJson).join?.phase, "discovering");

    const founder = await group.start({ id: 1, bindPort: founderPort });
    await waitForVoters(joiner, 2);
    const joined = await joiner.waitForStatus(
      "the join's phase voter",
      (status) => (status as unknown as StatusJson).join?.phase === "voter",
    ) as unknown as StatusJson;
    assert.equal(joined.join?.last_error, null, "the error of the search is gone");
    const catchUp = joined.join?.catch_up;
    assert.ok(catchUp != null && catchUp.commit_index >= 1, JSON.stringify(joined.join));
    assert.ok(catchUp.match_index >= catchUp.commit_index);

    // A learner that never takes the log: the test joins as node 9 and serves no Raft.
    raw = await RawRpc.connect(founder);
    await raw.call(JOIN_RPC, {
      member: { nodeId: STUCK_LEARNER_ID, ...raw.self, relayUrl: null },
    });
    const leaderView = await founder.waitForStatus(
      "node 9 in the leader's joins",
      (status) =>
        ((status as unknown as StatusJson).joins ?? []).some((join) =>
          join.node_id === STUCK_LEARNER_ID && join.phase === "learner" && (join.lag ?? 0) > 0
        ),
    ) as unknown as StatusJson;
    assert.equal(leaderView.role, "leader");
    assert.deepStrictEqual(await statusOf(joiner).then((status) => status.joins), []);

    const printed = await runBlixard(["cluster", "status", "--peer", founder.address]);
    assert.equal(printed.code, 0, describeRun(printed));
    assert.match(
      printed.stdout,
      // The reason it is not promoted: it never answers, so it is never caught up.
      /^joining: node 9 learner since \S+; [1-9][0-9]* entries behind the commit index; (not heard from recently|catching up.*)$/m,
    );
  } finally {
    await raw?.close();
    await group.cleanup();
  }
});
