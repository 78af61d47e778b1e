import assert from "node:assert/strict";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import { SYSTEM_SCHEDULER } from "../../util/scheduler.ts";
import { selfMemberInfo } from "../local_state/cluster_state.ts";
import { recordToAnnounce, SelfAnnouncer } from "./self_announcer.ts";

const KEY = "a".repeat(64);
const RELAY = "https://relay.example.net./";

function record(relayUrl: string | null, addresses = ["127.0.0.1:7002"]): MemberInfo {
  return { nodeId: 2, p2pNodeId: KEY, addresses, relayUrl };
}

/** An announcer over mutable `now` and `recorded`, whose sends are listed. */
function harness(options: { failures?: number } = {}) {
  const state = { now: record(null), recorded: record(null) as MemberInfo | null };
  const sent: MemberInfo[] = [];
  let failures = options.failures ?? 0;
  const abort = new AbortController();
  const announcer = new SelfAnnouncer({
    current: () => state.now,
    recorded: () => state.recorded,
    send: (member) => {
      sent.push(member);
      if (failures-- > 0) return Promise.reject(new Error("no leader"));
      return Promise.resolve({ index: sent.length });
    },
    scheduler: SYSTEM_SCHEDULER,
    signal: abort.signal,
  });
  return { state, sent, announcer, abort };
}

Deno.test("selfMemberInfo() records the relay the endpoint reached, not the configured one", () => {
  const endpoint = { nodeId: KEY, addresses: () => ["127.0.0.1:7002"], homeRelayUrl: () => RELAY };
  assert.equal(selfMemberInfo(2, endpoint).relayUrl, RELAY);
  assert.equal(selfMemberInfo(2, { ...endpoint, homeRelayUrl: () => null }).relayUrl, null);
});

Deno.test("recordToAnnounce() keeps the recorded relay while a configured one is not reached yet", () => {
  const recorded = record(RELAY);
  assert.equal(recordToAnnounce(record(null), { recorded, relayConfigured: true }).relayUrl, RELAY);
  assert.equal(recordToAnnounce(record(null), { recorded, relayConfigured: false }).relayUrl, null);
  const other = "https://other.example.net./";
  assert.equal(
    recordToAnnounce(record(other), { recorded, relayConfigured: true }).relayUrl,
    other,
  );
  assert.equal(
    recordToAnnounce(record(null), { recorded: null, relayConfigured: true }).relayUrl,
    null,
  );
});

Deno.test("SelfAnnouncer sends nothing while the record is the recorded one, and the new relay once it changes", async () => {
  const { state, sent, announcer } = harness();
  await announcer.check();
  assert.deepEqual(sent, []);
  state.now = record(RELAY);
  await announcer.check();
  assert.deepEqual(sent, [record(RELAY)]);
  state.recorded = record(RELAY);
  await announcer.check();
  assert.equal(sent.length, 1);
});

Deno.test("SelfAnnouncer retries until a leader takes it, and ends with the newest record seen meanwhile", async () => {
  const { state, sent, announcer } = harness({ failures: 1 });
  state.now = record(RELAY);
  const first = announcer.check();
  // Seen while the first attempt is refused: the same announcement sends it next.
  state.now = record(RELAY, ["127.0.0.1:7102"]);
  const second = announcer.check();
  await Promise.all([first, second]);
  assert.deepEqual(sent, [record(RELAY), record(RELAY, ["127.0.0.1:7102"])]);
});

Deno.test("SelfAnnouncer stops retrying once the node stops", async () => {
  const { state, sent, announcer, abort } = harness({ failures: 1_000 });
  state.now = record(RELAY);
  const running = announcer.check();
  abort.abort(new Error("stopped"));
  await running;
  assert.equal(sent.length, 1);
});
