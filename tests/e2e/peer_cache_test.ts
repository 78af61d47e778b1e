/**
 * The CLI's peer cache with a real node: the first command fetches `/bootstrap` and keeps
 * the verified identity in `$XDG_CACHE_HOME/blixard/peers.json` (0600); the next command
 * sends no HTTP request at all, counted by the node's own HTTP metrics; `--no-cache`
 * fetches again.
 */

import assert from "node:assert/strict";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { scrapeSum } from "../helpers/prometheus.ts";

/** Every HTTP request `node` answered, whatever the route (a scrape counts after it). */
async function httpRequests(node: NodeProcess): Promise<number> {
  return await scrapeSum(node.httpPort, "blixard_http_requests_total{");
}

Deno.test("a cached CLI command makes no HTTP request; --no-cache fetches /bootstrap again", async () => {
  const group = new NodeGroup();
  const cacheHome = Deno.makeTempDirSync({ prefix: `blixard-cache-e2e-${Deno.pid}-` });
  try {
    const node = await group.start({ id: 1 });
    await waitForVoters(node, 1);
    const put = await runBlixard(["kv", "put", "k", "v", "--peer", node.address], { cacheHome });
    assert.equal(put.code, 0, describeRun(put));
    const cacheFile = `${cacheHome}/blixard/peers.json`;
    assert.equal(Deno.statSync(cacheFile).mode! & 0o777, 0o600);
    assert.ok(JSON.parse(Deno.readTextFileSync(cacheFile)).peers[node.address] !== undefined);

    // Each scrape is itself a request, counted once it is answered: compare scrape to scrape.
    const before = await httpRequests(node);
    const get = await runBlixard(["kv", "get", "k", "--peer", node.address], { cacheHome });
    assert.equal(get.code, 0, describeRun(get));
    assert.equal(get.stdout, "v\n");
    assert.equal(await httpRequests(node), before + 1, "only the previous scrape was added");

    const uncached = await runBlixard(
      ["kv", "get", "k", "--peer", node.address, "--no-cache"],
      { cacheHome },
    );
    assert.equal(uncached.code, 0, describeRun(uncached));
    assert.equal(await httpRequests(node), before + 3, "the scrape and one /bootstrap");
  } finally {
    await group.cleanup();
    Deno.removeSync(cacheHome, { recursive: true });
  }
});
