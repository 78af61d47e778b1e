import assert from "node:assert/strict";
import { z } from "zod";
import { defineRpc, RpcError } from "../../src/transport/rpc.ts";
import { settleMicrotasks, SimClock } from "./sim_clock.ts";
import { SimRpc } from "./sim_rpc.ts";
import { SimRandom } from "./sim_random.ts";
import { simMemberInfo } from "./sim_node.ts";

const ECHO_RPC = defineRpc({
  method: "test.echo",
  request: () => z.strictObject({ text: z.string().max(16) }),
  response: () => z.strictObject({ text: z.string(), from: z.string() }),
});

/** Two nodes, 1 and 2, on a link with a fixed delay of 3 units; node 2 serves `test.echo`. */
function world() {
  let now = 0;
  const clock = new SimClock(() => now);
  const blocked = new Set<string>();
  const rpc = new SimRpc({
    links: {
      isBlocked: (from, to) => blocked.has(`${from}>${to}`),
      faults: { delayMin: 3, delayMax: 3 },
    },
    random: new SimRandom(1),
    scheduler: clock.scope(),
  });
  const stopped = new AbortController();
  const server = rpc.serve(
    { nodeId: 2, p2pNodeId: simMemberInfo(2).p2pNodeId },
    { stopped: stopped.signal, scheduler: clock.scope() },
  );
  server.register(ECHO_RPC, (request, context) => {
    if (request.text === "busy") {
      throw new RpcError("busy", "a join storm", { retryAfterMs: 40 });
    }
    return { text: request.text, from: context.remoteNodeId };
  });
  const client = rpc.client({ nodeId: 1, p2pNodeId: simMemberInfo(1).p2pNodeId });
  /** Runs `units` units of simulated time, settling the promises after each. */
  const run = async (units: number) => {
    for (let unit = 0; unit < units; unit++) {
      now += 1;
      clock.runDue();
      await settleMicrotasks();
    }
  };
  return { rpc, client, run, blocked, stopped, peer: simMemberInfo(2) };
}

/** The outcome of `promise` so far: its value, its error, or `pending`. */
function watch<T>(promise: Promise<T>): { outcome: { value?: T; error?: unknown } | "pending" } {
  const state: { outcome: { value?: T; error?: unknown } | "pending" } = { outcome: "pending" };
  promise.then((value) => (state.outcome = { value }), (error) => (state.outcome = { error }));
  return state;
}

/** The `RpcError` a watched call failed with; fails when it is pending or succeeded. */
function errorOf(state: { outcome: { error?: unknown } | "pending" }): RpcError {
  const outcome = state.outcome;
  assert.ok(outcome !== "pending", "the call is still pending");
  assert.ok(outcome.error instanceof RpcError, `not an RpcError: ${String(outcome.error)}`);
  return outcome.error;
}

Deno.test("SimRpc answers after a delay each way, naming the caller's P2P id to the handler", async () => {
  const { client, run, peer } = world();
  const call = watch(client.call(peer, ECHO_RPC, { text: "hi" }, { timeoutMs: 1000 }));
  await run(5);
  assert.equal(call.outcome, "pending", "3 units there, 3 back");
  await run(1);
  assert.deepEqual(call.outcome, { value: { text: "hi", from: simMemberInfo(1).p2pNodeId } });
});

Deno.test("SimRpc passes a handler's error code and retry-after to the caller", async () => {
  const { client, run, peer } = world();
  const call = watch(client.call(peer, ECHO_RPC, { text: "busy" }, { timeoutMs: 1000 }));
  await run(6);
  const error = errorOf(call);
  assert.equal(error.code, "busy");
  assert.equal(error.retryAfterMs, 40);
  assert.equal(error.remoteMessage, "a join storm");
});

Deno.test("SimRpc refuses a request its schema rejects, before the handler runs", async () => {
  const { client, run, peer } = world();
  const call = watch(
    client.call(peer, ECHO_RPC, { text: "far too long for the schema" }, { timeoutMs: 1000 }),
  );
  await run(6);
  assert.equal(errorOf(call).code, "invalid_request");
});

Deno.test("SimRpc fails a call over a cut link at once, and one whose request a cut loses at its deadline", async () => {
  const { client, run, peer, blocked } = world();
  blocked.add("1>2");
  const refused = watch(client.call(peer, ECHO_RPC, { text: "a" }, { timeoutMs: 1000 }));
  await run(1);
  assert.equal(errorOf(refused).code, "unavailable");
  blocked.clear();
  const lost = watch(client.call(peer, ECHO_RPC, { text: "b" }, { timeoutMs: 20 }));
  blocked.add("2>1"); // the answer cannot come back
  await run(9);
  assert.equal(lost.outcome, "pending", "no answer, and the deadline (10 units) not passed");
  await run(1);
  assert.equal(errorOf(lost).code, "deadline_exceeded");
});

Deno.test("SimRpc tells the caller when the node it called stops", async () => {
  const { client, run, peer, stopped } = world();
  stopped.abort();
  const call = watch(client.call(peer, ECHO_RPC, { text: "a" }, { timeoutMs: 1000 }));
  await run(1);
  assert.equal(errorOf(call).code, "unavailable");
});
