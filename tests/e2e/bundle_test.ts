/**
 * The program as the binary carries it: the minified bundle of `scripts/bundle.ts`, built
 * from this tree, runs the original usage (a node, and a second one joining it with
 * `--peers`), serves `/metrics` (prom-client, CommonJS inside the bundle), runs the `kv`
 * and `cluster` commands against it and answers the CLI's version and flag errors; inside a
 * network namespace, a node joins another found by mDNS (multicast-dns, CommonJS too). The
 * rest of the suite runs `main.ts`. Code-split chunks load on demand: each of these loads
 * some (prom-client, mDNS discovery, each command).
 */

import assert from "node:assert/strict";
import { bundleNode } from "../../scripts/bundle.ts";
import { NodeGroup } from "../helpers/node_process.ts";
import { statusOf, waitForVoters } from "../helpers/cluster.ts";
import { runBlixard } from "../helpers/cli.ts";
import { multicastNetnsUnavailable, withMulticastNetns } from "../helpers/multicast_netns.ts";
import { VERSION } from "../../src/version.ts";

const DIST = new URL("../../dist/", import.meta.url).pathname;
const MDNS_ON = { BLIXARD_P2P_ENABLED: "true", BLIXARD_ENABLE_MDNS_DISCOVERY: "true" };
const netnsUnavailable = multicastNetnsUnavailable();

/** Runs the bundle's CLI, with output trimmed. */
async function runBundle(bundle: string, args: string[]) {
  const { code, stdout, stderr } = await runBlixard(args, { mainPath: bundle });
  return { code, stdout: stdout.trim(), stderr: stderr.trim() };
}

Deno.test("the minified bundle runs like the sources", async (t) => {
  Deno.mkdirSync(DIST, { recursive: true });
  // Under dist/, as the real bundle: the Iroh addon is found in the node_modules above it.
  const dir = Deno.makeTempDirSync({ dir: DIST, prefix: "bundle-test-" });
  try {
    const bundle = await bundleNode(dir);

    await t.step("the original usage, /metrics, --version and a bad flag", async () => {
      assert.deepEqual(await runBundle(bundle, ["--version"]), {
        code: 0,
        stdout: `blixard ${VERSION}`,
        stderr: "",
      });
      const badFlag = await runBundle(bundle, ["node", "--id", "x"]);
      assert.equal(badFlag.code, 2);
      assert.match(badFlag.stderr, /^blixard: --id x: must be an integer/);
      const group = new NodeGroup();
      try {
        const first = await group.start({ id: 1, mainPath: bundle });
        const second = await group.start({ id: 2, mainPath: bundle, peers: [first.address] });
        await waitForVoters(second, 2);
        const status = await statusOf(first);
        assert.deepEqual(status.members.map((member) => [member.node_id, member.role]), [
          [1, "voter"],
          [2, "voter"],
        ]);
        assert.equal((await statusOf(second)).cluster_id, status.cluster_id);
        // The cluster and kv commands are chunks of their own, loaded only by these commands.
        const put = await runBundle(bundle, ["kv", "put", "k", "v", "--peer", first.address]);
        assert.equal(put.code, 0, put.stderr);
        const shown = await runBundle(bundle, [
          "cluster",
          "status",
          "--json",
          "--peer",
          first.address,
        ]);
        assert.equal(shown.code, 0, shown.stderr);
        assert.equal(JSON.parse(shown.stdout).cluster_id, status.cluster_id);
        // The process families come from prom-client, which require()s Node's modules.
        const metrics = await first.getText("/metrics");
        assert.equal(metrics.status, 200);
        assert.match(metrics.text, /^blixard_process_cpu_seconds_total /m);
        assert.match(metrics.text, /^blixard_http_requests_total\{/m);
      } finally {
        await group.cleanup();
      }
    });

    await t.step({
      name: "a node joins another found by mDNS",
      ignore: netnsUnavailable !== null,
      fn: () =>
        withMulticastNetns(async (netns) => {
          const group = new NodeGroup();
          try {
            const start = (id: number, env: Record<string, string>) =>
              group.start({ id, mainPath: bundle, netns: netns.name, env });
            const first = await start(1, MDNS_ON);
            await waitForVoters(first, 1);
            const second = await start(2, { ...MDNS_ON, BLIXARD_DISCOVERY_WAIT: "20s" });
            const status = await waitForVoters(second, 2);
            assert.equal(status.cluster_id, (await statusOf(first)).cluster_id);
            assert.match(second.stderr, /joined cluster/);
          } finally {
            await group.cleanup();
          }
        }),
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
