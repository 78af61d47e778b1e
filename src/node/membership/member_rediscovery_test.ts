import assert from "node:assert/strict";
import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { LEADERLESS_CHECKS_MIN, MemberRediscovery } from "./member_rediscovery.ts";

const KEY_2 = "2".repeat(64);
const KEY_3 = "3".repeat(64);
const RECORDS = new Map<number, MemberInfo>([
  [2, { nodeId: 2, p2pNodeId: KEY_2, addresses: ["127.0.0.1:7002"], relayUrl: null }],
  [3, { nodeId: 3, p2pNodeId: KEY_3, addresses: ["127.0.0.1:7003"], relayUrl: null }],
]);

function statusWith(clusterId: string | null, members: StatusJson["members"]): StatusJson {
  return {
    node_id: 2,
    cluster_id: clusterId,
    role: "leader",
    term: 5,
    leader_id: 2,
    commit_index: 10,
    applied_index: 10,
    members,
    join: null,
  };
}

function member(nodeId: number, key: string, address: string): StatusJson["members"][number] {
  return {
    node_id: nodeId,
    role: "voter",
    p2p_node_id: key,
    p2p_addresses: [address],
    p2p_relay_url: null,
  };
}

function rediscovery(status: StatusJson, state: { leaderless: boolean; asked: number }) {
  const failures: string[] = [];
  const watch = new MemberRediscovery({
    leaderless: () => state.leaderless,
    clusterId: () => "c-1",
    recordOf: (nodeId) => RECORDS.get(nodeId) ?? null,
    askPeers: () => {
      state.asked++;
      return Promise.resolve({ peer: "127.0.0.1:9001", status });
    },
    onMoved: () => {},
    onFailed: (reason) => failures.push(reason),
  });
  return { watch, failures };
}

Deno.test("MemberRediscovery asks --peers only after LEADERLESS_CHECKS_MIN leaderless checks, and takes moved known members", async () => {
  const status = statusWith("c-1", [
    member(2, KEY_2, "127.0.0.1:9002"),
    member(3, KEY_3, "127.0.0.1:7003"),
    member(4, "4".repeat(64), "127.0.0.1:9004"),
  ]);
  const state = { leaderless: true, asked: 0 };
  const { watch } = rediscovery(status, state);
  for (let check = 1; check < LEADERLESS_CHECKS_MIN; check++) {
    assert.deepStrictEqual(await watch.check(), []);
  }
  assert.equal(state.asked, 0);
  assert.deepStrictEqual(await watch.check(), [
    { nodeId: 2, p2pNodeId: KEY_2, addresses: ["127.0.0.1:9002"], relayUrl: null },
  ]);
  assert.equal(state.asked, 1);
  // The next attempt waits twice as long.
  for (let check = 1; check < 2 * LEADERLESS_CHECKS_MIN; check++) await watch.check();
  assert.equal(state.asked, 1);
  await watch.check();
  assert.equal(state.asked, 2);
});

Deno.test("MemberRediscovery does nothing with a leader, and trusts no other cluster nor unknown keys", async () => {
  const state = { leaderless: false, asked: 0 };
  const moved = statusWith("c-1", [member(2, KEY_2, "127.0.0.1:9002")]);
  const { watch } = rediscovery(moved, state);
  for (let check = 0; check < 3 * LEADERLESS_CHECKS_MIN; check++) await watch.check();
  assert.equal(state.asked, 0);

  const other = rediscovery(statusWith("c-other", [member(2, KEY_2, "127.0.0.1:9002")]), {
    leaderless: true,
    asked: 0,
  });
  const otherKey = rediscovery(statusWith("c-1", [member(2, "9".repeat(64), "127.0.0.1:9")]), {
    leaderless: true,
    asked: 0,
  });
  for (let check = 0; check < LEADERLESS_CHECKS_MIN; check++) {
    assert.deepStrictEqual(await other.watch.check(), []);
    assert.deepStrictEqual(await otherKey.watch.check(), []);
  }
  assert.match(other.failures[0] ?? "", /belongs to cluster c-other, not c-1/);
  assert.deepStrictEqual(otherKey.failures, []);
});
