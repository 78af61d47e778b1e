/**
 * Helpers for end-to-end tests of whole clusters: form one from real child nodes, read
 * `/status` from every member, and wait for the agreements a test needs (a leader, so many
 * voters). Waits poll with generous deadlines; no test asserts on how long anything took.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { StatusJson } from "../../src/transport/cluster_rpcs.ts";
import type { NodeGroup, NodeProcess } from "./node_process.ts";
import { WAIT_MS } from "./wait_budget.ts";

/** Deadline for a cluster to reach a state (CI machines are slow and shared). */
export const CLUSTER_WAIT_MS = WAIT_MS;

/** The `/status` of `node`, typed. */
export async function statusOf(node: NodeProcess): Promise<StatusJson> {
  return await node.getJson("/status") as unknown as StatusJson;
}

/**
 * Waits until `node` is a voter in a configuration of `voters` voters with a known leader
 * (within `CLUSTER_WAIT_MS` unless `options.timeoutMs` says otherwise).
 */
export async function waitForVoters(
  node: NodeProcess,
  voters: number,
  options: { timeoutMs?: number } = {},
): Promise<StatusJson> {
  return await node.waitForStatus(
    `${voters} voters and a leader`,
    (status) => {
      const typed = status as unknown as StatusJson;
      return typed.leader_id !== null && typed.role !== "learner" && typed.role !== "joining" &&
        typed.members.filter((member) => member.role === "voter").length === voters;
    },
    { timeoutMs: options.timeoutMs ?? CLUSTER_WAIT_MS },
  ) as unknown as StatusJson;
}

/**
 * Starts a cluster of `size` nodes the way the original usage does: node 1 founds it,
 * each later node joins through the node before it (so joins also go through followers).
 * Returns once every node sees `size` voters and a leader. `dataDirOf` places a node's
 * data dir (the group's temp dir otherwise); `args` are given to every node; `waitMs`
 * bounds each wait (`CLUSTER_WAIT_MS` by default).
 */
export async function formCluster(
  group: NodeGroup,
  size: number,
  options: { dataDirOf?: (id: number) => string; args?: string[]; waitMs?: number } = {},
): Promise<NodeProcess[]> {
  const wait = { timeoutMs: options.waitMs ?? CLUSTER_WAIT_MS };
  const nodes: NodeProcess[] = [];
  for (let id = 1; id <= size; id++) {
    const peers = id === 1 ? [] : [nodes[id - 2]!.address];
    const dataDir = options.dataDirOf?.(id);
    const node = await group.start({
      id,
      peers,
      ...(dataDir === undefined ? {} : { dataDir }),
      ...(options.args === undefined ? {} : { args: options.args }),
    });
    nodes.push(node);
    await waitForVoters(node, id, wait);
  }
  for (const node of nodes) await waitForVoters(node, size, wait);
  return nodes;
}

/** Waits until every node in `nodes` names the same leader, and returns it. */
export async function agreedLeader(nodes: NodeProcess[]): Promise<NodeProcess> {
  const deadline = performance.now() + CLUSTER_WAIT_MS;
  let seen: (number | null)[] = [];
  while (performance.now() < deadline) {
    seen = await Promise.all(
      nodes.map(async (node) => (await statusOf(node).catch(() => null))?.leader_id ?? null),
    );
    const leaderId = seen[0];
    if (leaderId !== null && leaderId !== undefined && seen.every((id) => id === leaderId)) {
      const leader = nodes.find((node) => node.id === leaderId);
      if (leader !== undefined) return leader;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(
    `nodes ${nodes.map((node) => node.id).join(",")} did not agree on a leader: ${
      JSON.stringify(seen)
    }`,
  );
}
