/**
 * `--bind` scope and `--advertise` on real networks: namespaces of the test's own, joined
 * by veth pairs, stand in for a machine on two networks and for a node behind NAT. Root
 * only; skipped with a message otherwise.
 */

import assert from "node:assert/strict";
import { statusOf, waitForVoters } from "../helpers/cluster.ts";
import { NetnsLab, netnsUnavailable, nftAvailable } from "../helpers/netns.ts";
import { curlInNetns, NodeGroup, type NodeProcess } from "../helpers/node_process.ts";

const unavailable = netnsUnavailable() ?? (nftAvailable() ? null : "'nft' is not installed");
if (unavailable !== null) {
  console.warn(`bind_scope_netns_test.ts: skipped, ${unavailable} (see .ci/run)`);
}

const PROBE_PATH = new URL("../helpers/iroh_probe.ts", import.meta.url).pathname;
/** Deadline of each Iroh connection attempt of the probe. */
const PROBE_TIMEOUT_MS = 2_000;
/** How long a node may take until it has only the sockets it should (Iroh's start-up probes). */
const SOCKETS_SETTLE_MS = 15_000;

/** A listening socket of a process, as `ss` shows it. */
interface ListedSocket {
  protocol: "udp" | "tcp";
  host: string;
  port: number;
}

/** The listening UDP and TCP sockets of `pid`, listed by `ss` inside `netns`. */
async function socketsOf(lab: NetnsLab, netns: string, pid: number): Promise<ListedSocket[]> {
  const sockets: ListedSocket[] = [];
  for (const protocol of ["udp", "tcp"] as const) {
    const flag = protocol === "udp" ? "-lunpH" : "-ltnpH";
    const { stdout } = await lab.exec(netns, ["ss", flag]);
    for (const line of stdout.split("\n")) {
      if (!line.includes(`pid=${pid},`)) continue;
      const local = line.trim().split(/\s+/)[3] ?? "";
      const colon = local.lastIndexOf(":");
      const host = local.slice(0, colon).replace(/^\[|\]$/g, "").replace(/%.*$/, "");
      sockets.push({ protocol, host, port: Number(local.slice(colon + 1)) });
    }
  }
  return sockets;
}

/** Waits until every socket of `node` is on one of `hosts`; returns them, or fails listing them. */
async function waitForSocketsOn(
  lab: NetnsLab,
  node: NodeProcess,
  hosts: string[],
): Promise<ListedSocket[]> {
  const deadline = performance.now() + SOCKETS_SETTLE_MS;
  let sockets: ListedSocket[] = [];
  while (performance.now() < deadline) {
    sockets = await socketsOf(lab, node.netns!, node.pid);
    const udp = sockets.filter((socket) => socket.protocol === "udp").length;
    const tcp = sockets.length - udp;
    if (udp > 0 && tcp > 0 && sockets.every((socket) => hosts.includes(socket.host))) {
      return sockets;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.fail(
    `node ${node.id} keeps sockets outside ${hosts.join(", ")}: ${JSON.stringify(sockets)}`,
  );
}

/** Dials `p2pNodeId` with Iroh from inside `netns` at each address; outcome per address. */
async function irohProbe(
  lab: NetnsLab,
  netns: string,
  p2pNodeId: string,
  addresses: string[],
): Promise<Record<string, string>> {
  const { stdout } = await lab.exec(netns, [
    Deno.execPath(),
    "run",
    "-A",
    PROBE_PATH,
    p2pNodeId,
    String(PROBE_TIMEOUT_MS),
    ...addresses,
  ], { timeoutMs: 60_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

/** Whether an HTTP GET of `url` from inside `netns` gets any answer. */
async function httpAnswers(netns: string, url: string): Promise<boolean> {
  return await curlInNetns(netns, url).then(() => true, () => false);
}

const NODE_ENV = { BLIXARD_P2P_ENABLED: "true", BLIXARD_ENABLE_MDNS_DISCOVERY: "false" };

/**
 * A node on a host with two networks, bound to its address on the private one: it lists
 * sockets only on `allowedHosts`, answers Iroh and HTTP from the private network, and
 * nothing from the other network on any of its ports. Returns the node's `/metrics`.
 */
async function checkBoundToOneNetwork(
  options: { ipv6LoopbackDisabled: boolean; allowedHosts: string[] },
): Promise<string> {
  const lab = new NetnsLab();
  const group = new NodeGroup();
  try {
    const host = await lab.namespace("host");
    const privateNet = await lab.namespace("priv");
    const otherNet = await lab.namespace("other");
    await lab.link(
      { netns: privateNet, addresses: ["10.201.1.2/24", "fd42:1::2/64"] },
      { netns: host, addresses: ["10.201.1.1/24", "fd42:1::1/64"] },
    );
    await lab.link(
      { netns: host, addresses: ["10.201.2.1/24", "fd42:2::1/64"] },
      { netns: otherNet, addresses: ["10.201.2.2/24", "fd42:2::2/64"] },
    );
    if (options.ipv6LoopbackDisabled) {
      await lab.exec(host, ["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6"]);
    }
    const node = await group.start({
      id: 1,
      netns: host,
      bindHost: "10.201.1.1",
      bindPort: 7001,
      env: NODE_ENV,
    });
    await node.waitForHealthy({ timeoutMs: 30_000 });
    const bootstrap = await node.getJson("/bootstrap");
    assert.deepEqual(bootstrap.p2p_addresses, ["10.201.1.1:7001"]);

    const sockets = await waitForSocketsOn(lab, node, options.allowedHosts);
    assert.ok(
      sockets.some((socket) => socket.protocol === "udp" && socket.port === 7001) &&
        sockets.some((socket) => socket.protocol === "tcp" && socket.port === 8001),
      JSON.stringify(sockets),
    );

    // Control: from its own network the node answers Iroh and HTTP.
    const p2pNodeId = String(bootstrap.p2p_node_id);
    assert.deepEqual(await irohProbe(lab, privateNet, p2pNodeId, ["10.201.1.1:7001"]), {
      "10.201.1.1:7001": "connected",
    });
    assert.ok(await httpAnswers(privateNet, "http://10.201.1.1:8001/health"));

    // From the other network: every port the node has, at the host's addresses there.
    const otherSide = ["10.201.2.1", "[fd42:2::1]"];
    const udpTargets = sockets.filter((socket) => socket.protocol === "udp")
      .flatMap((socket) => otherSide.map((address) => `${address}:${socket.port}`));
    const outcomes = await irohProbe(lab, otherNet, p2pNodeId, udpTargets);
    for (const target of udpTargets) {
      assert.ok(outcomes[target] !== undefined, `no outcome for ${target}`);
      assert.notEqual(outcomes[target], "connected", `Iroh reached the node at ${target}`);
    }
    for (const socket of sockets.filter((socket) => socket.protocol === "tcp")) {
      for (const address of otherSide) {
        const url = `http://${address}:${socket.port}/health`;
        assert.equal(await httpAnswers(otherNet, url), false, `HTTP answered at ${url}`);
      }
    }
    return (await curlInNetns(host, "http://10.201.1.1:8001/metrics")).text;
  } finally {
    await group.cleanup();
    await lab.cleanup();
  }
}

Deno.test({
  name: "a node bound to one of two networks lists sockets only there and answers nobody " +
    "on the other network, on any UDP or TCP port",
  ignore: unavailable !== null,
  async fn() {
    // The bind address, and the other IP family's loopback that Iroh cannot do without.
    const metrics = await checkBoundToOneNetwork({
      ipv6LoopbackDisabled: false,
      allowedHosts: ["10.201.1.1", "::1"],
    });
    assert.match(metrics, /^blixard_p2p_incoming_outside_bind_total 0$/m);
  },
});

Deno.test({
  name: "without IPv6 on loopback, Iroh's wildcard IPv6 socket answers nobody on the other " +
    "network: the node drops and counts what arrives there",
  ignore: unavailable !== null,
  async fn() {
    const metrics = await checkBoundToOneNetwork({
      ipv6LoopbackDisabled: true,
      allowedHosts: ["10.201.1.1", "::"],
    });
    assert.match(metrics, /^blixard_p2p_incoming_outside_bind_total [1-9][0-9]*$/m);
  },
});

Deno.test({
  name: "a node behind NAT is joined through its --advertise address, shown in /bootstrap " +
    "and /status, and a restart with another --advertise announces it",
  ignore: unavailable !== null,
  async fn() {
    const lab = new NetnsLab();
    const group = new NodeGroup();
    try {
      const behindNat = await lab.namespace("nat");
      const router = await lab.namespace("router");
      const outside = await lab.namespace("out");
      await lab.link(
        { netns: behindNat, addresses: ["10.202.1.2/24"] },
        { netns: router, addresses: ["10.202.1.1/24"] },
      );
      await lab.link(
        { netns: router, addresses: ["10.202.2.1/24"] },
        { netns: outside, addresses: ["10.202.2.2/24"] },
      );
      await lab.exec(behindNat, ["ip", "route", "add", "default", "via", "10.202.1.1"]);
      await lab.exec(router, ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
      // The router forwards its public ports to the node (two P2P ports, to move to later)
      // and hides the private network behind its own address.
      const table = `bx_nat_${lab.suffix}`;
      await lab.nftTable(
        router,
        table,
        `table ip ${table} {
          chain prerouting {
            type nat hook prerouting priority dstnat; policy accept;
            ip daddr 10.202.2.1 udp dport { 7001, 7101 } dnat to 10.202.1.2:7001
            ip daddr 10.202.2.1 tcp dport 8001 dnat to 10.202.1.2:8001
          }
          chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr 10.202.1.0/24 ip daddr != 10.202.1.0/24 masquerade
          }
        }\n`,
      );
      const seedOptions = {
        id: 1,
        netns: behindNat,
        bindHost: "10.202.1.2",
        bindPort: 7001,
        env: NODE_ENV,
      };
      const seed = await group.start({ ...seedOptions, args: ["--advertise", "10.202.2.1:7001"] });
      await waitForVoters(seed, 1);
      assert.deepEqual((await seed.getJson("/bootstrap")).p2p_addresses, ["10.202.2.1:7001"]);
      assert.deepEqual((await statusOf(seed)).members[0]?.p2p_addresses, ["10.202.2.1:7001"]);
      // Outside, only the router's address leads to the node.
      assert.equal(await httpAnswers(outside, "http://10.202.1.2:8001/health"), false);

      const joiner = await group.start({
        id: 2,
        netns: outside,
        bindHost: "10.202.2.2",
        bindPort: 7002,
        peers: ["10.202.2.1:7001"],
        env: NODE_ENV,
      });
      const joined = await waitForVoters(joiner, 2);
      assert.deepEqual(
        joined.members.find((member) => member.node_id === 1)?.p2p_addresses,
        ["10.202.2.1:7001"],
      );

      assert.equal((await seed.stop()).code, 0);
      const moved = await group.start({ ...seedOptions, args: ["--advertise", "10.202.2.1:7101"] });
      await joiner.waitForStatus("node 1's new advertised address replicated", (status) => {
        const members = (status as { members: { node_id: number; p2p_addresses: string[] }[] })
          .members;
        return members.find((member) => member.node_id === 1)?.p2p_addresses.join() ===
          "10.202.2.1:7101";
      }, { timeoutMs: 30_000 });
      await waitForVoters(moved, 2);
    } finally {
      await group.cleanup();
      await lab.cleanup();
    }
  },
});
