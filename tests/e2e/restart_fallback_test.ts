/**
 * A restarted node whose recorded members all moved while it was down finds them again
 * through `--peers` (DESIGN.md section 6): its own records name only dead addresses, so
 * without the fallback it would campaign forever, unseen.
 */

import assert from "node:assert/strict";
import { formCluster, statusOf, waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { freeBindPort } from "../helpers/ports.ts";

const WAIT_MS = 30_000;

/** Waits until `observer`'s `/status` records node `nodeId` at `address`. */
async function waitForAddress(observer: NodeProcess, nodeId: number, address: string) {
  await observer.waitForStatus(`node ${nodeId} recorded at ${address}`, (status) => {
    const members = (status as { members: { node_id: number; p2p_addresses: string[] }[] })
      .members;
    return members.some((member) =>
      member.node_id === nodeId && member.p2p_addresses.includes(address)
    );
  }, { timeoutMs: WAIT_MS });
}

/** Stops `node` and starts it again from its data dir on a new port. */
async function moveNode(
  group: NodeGroup,
  node: NodeProcess,
  options: { peers?: string[] } = {},
): Promise<NodeProcess> {
  assert.equal((await node.stop()).code, 0, node.stderr);
  return await group.start({ id: node.id, bindPort: await freeBindPort(), ...options });
}

Deno.test("a restarted node whose recorded members all moved finds them through --peers", async () => {
  const group = new NodeGroup();
  try {
    const [first, second, third] = await formCluster(group, 3) as [
      NodeProcess,
      NodeProcess,
      NodeProcess,
    ];
    assert.equal((await third.stop()).code, 0, third.stderr);
    // One at a time, so that the two that run keep a quorum and record each move.
    const movedFirst = await moveNode(group, first);
    await waitForAddress(second, 1, movedFirst.address);
    const movedSecond = await moveNode(group, second);
    await waitForAddress(movedFirst, 2, movedSecond.address);

    // Node 3's records name only the old addresses; nobody knows its new one either.
    const movedThird = await group.start({
      id: 3,
      bindPort: await freeBindPort(),
      peers: [movedFirst.address],
    });
    await waitForVoters(movedThird, 3, { timeoutMs: WAIT_MS });
    await waitForAddress(movedFirst, 3, movedThird.address);
    const status = await statusOf(movedThird);
    assert.notEqual(status.leader_id, null);
    const fellBack = movedThird.logRecords().some((record) =>
      String(record.message).includes("learned through --peers")
    );
    assert.ok(fellBack, movedThird.stderr);
  } finally {
    await group.cleanup();
  }
});
