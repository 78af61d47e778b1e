/**
 * `dns:NAME` peers against a real DNS server (dnsmasq on 127.0.0.1): a node joins through
 * TXT records that carry the members' identities, signed with the cluster secret, without
 * any `/bootstrap` request; a client does the same; and a node joins through records that
 * only name a `host:port`, which it fetches `/bootstrap` from.
 */

import assert from "node:assert/strict";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import { Dnsmasq, hasDnsmasq, recordsOfZoneLines } from "../helpers/dnsmasq.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { scrapeSum } from "../helpers/prometheus.ts";
import { SECRET_TEXT, writeSecretFile } from "../helpers/secrets.ts";

const IDENTITY_NAME = "members.blixard.test";
const HOST_PORT_NAME = "seeds.blixard.test";

/** How many `/bootstrap` requests `node` has answered. */
async function bootstrapRequests(node: NodeProcess): Promise<number> {
  return await scrapeSum(node.httpPort, 'blixard_http_requests_total{route="/bootstrap"');
}

Deno.test({
  name:
    "dns: peers join through dnsmasq: identity records need no /bootstrap, host:port records fetch it",
  ignore: !hasDnsmasq(),
  fn: async () => {
    const group = new NodeGroup();
    const secretDir = Deno.makeTempDirSync({ prefix: `blixard-dns-e2e-${Deno.pid}-` });
    const secretFile = writeSecretFile(secretDir, "secret", SECRET_TEXT);
    const withSecret = ["--cluster-secret-file", secretFile];
    let dns: Dnsmasq | null = null;
    try {
      const founder = await group.start({ id: 1, args: withSecret });
      await waitForVoters(founder, 1);
      const printed = await runBlixard([
        "cluster",
        "dns-records",
        "--name",
        `${IDENTITY_NAME}.`,
        "--peer",
        founder.address,
        ...withSecret,
      ]);
      assert.equal(printed.code, 0, describeRun(printed));
      const identityRecords = recordsOfZoneLines(printed.stdout);
      assert.equal(identityRecords.length, 1, printed.stdout);
      assert.match(identityRecords[0]!.strings.join(""), / t=[0-9]+ sig=[0-9a-f]{64}$/);
      dns = await Dnsmasq.start([
        ...identityRecords,
        { name: HOST_PORT_NAME, strings: [founder.address] },
      ]);
      const viaDns = ["--dns-server", dns.address, ...withSecret];

      const before = await bootstrapRequests(founder);
      const second = await group.start({
        id: 2,
        peers: [`dns:${IDENTITY_NAME}`],
        args: viaDns,
      });
      await waitForVoters(second, 2);
      const status = await runBlixard([
        "cluster",
        "status",
        "--peer",
        `dns:${IDENTITY_NAME}.`,
        "--json",
        ...viaDns,
      ]);
      assert.equal(status.code, 0, describeRun(status));
      assert.equal(JSON.parse(status.stdout).node_id, 1);
      assert.equal(
        await bootstrapRequests(founder),
        before,
        "a join and a client that read identities from DNS fetch no /bootstrap",
      );

      const third = await group.start({
        id: 3,
        peers: [`dns:${HOST_PORT_NAME}`],
        args: viaDns,
      });
      await waitForVoters(third, 3);
      assert.ok(
        await bootstrapRequests(founder) > before,
        "a host:port record is fetched over HTTP",
      );
    } finally {
      await dns?.stop();
      await group.cleanup();
      Deno.removeSync(secretDir, { recursive: true });
    }
  },
});
