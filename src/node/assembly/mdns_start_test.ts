import assert from "node:assert/strict";
import { parseNodeConfig } from "../../cli/node_config.ts";
import type { NodeDiscovery } from "../../discovery/node_discovery.ts";
import { decideMdnsStart } from "./node.ts";
import { ResourceStack } from "./resource_stack.ts";

/**
 * A formation rule that reports `waits` reasons to wait, then decides only when the test
 * says so; counts how often it was asked.
 */
function pendingRule(waits: string[]) {
  const decision = Promise.withResolvers<"found" | "join">();
  let asked = 0;
  const mdns = {
    decideStart: (options: { onWait: (reason: string) => void }) => {
      asked++;
      for (const reason of waits) options.onWait(reason);
      return decision.promise;
    },
  } as unknown as NodeDiscovery;
  return { mdns, decide: decision.resolve, asked: () => asked };
}

function mdnsConfig(extra: string[] = []) {
  return parseNodeConfig(["--id", "2", "--data-dir", "/nonexistent", "--mdns", ...extra], {});
}

Deno.test("a new mDNS node without --bootstrap-expect runs whileWaiting once, in the rule's wait, before it decides", async () => {
  const rule = pendingRule(["browsing for a cluster to join", "still browsing"]);
  const resources = new ResourceStack();
  const events: string[] = [];
  const deciding = decideMdnsStart(mdnsConfig(), {
    mdns: rule.mdns,
    resources,
    firstStart: true,
    whileWaiting: () => events.push("whileWaiting"),
  }).then((join) => events.push(`decided join=${join}`));
  await Promise.resolve();
  assert.deepEqual(events, ["whileWaiting"], "the storage opens in the rule's wait");
  rule.decide("join");
  await deciding;
  assert.deepEqual(events, ["whileWaiting", "decided join=true"]);
  await resources.releaseAll();
});

Deno.test("a node that does not ask the formation rule, or whose rule decides without waiting, does not run whileWaiting", async () => {
  const cases = [
    { config: mdnsConfig(["--peers", "127.0.0.1:7001"]), firstStart: true, waits: ["x"] },
    { config: mdnsConfig(), firstStart: false, waits: ["x"] },
    { config: mdnsConfig(), firstStart: true, waits: [] },
  ];
  for (const { config, firstStart, waits } of cases) {
    const rule = pendingRule(waits);
    let waited = 0;
    const deciding = decideMdnsStart(config, {
      mdns: rule.mdns,
      resources: new ResourceStack(),
      firstStart,
      whileWaiting: () => waited++,
    });
    rule.decide("found");
    assert.equal(await deciding, false);
    assert.equal(waited, 0);
  }
});
