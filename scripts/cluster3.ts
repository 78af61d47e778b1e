/**
 * `deno task cluster3`: a 3-node cluster on this machine, the way the original usage
 * starts one. Node 1 founds it on 127.0.0.1:7001; node 2 joins through node 1 and node 3
 * through node 2 (a follower), each only knowing the other's `host:port`. The nodes run with
 * `BLIXARD_P2P_ENABLED=true BLIXARD_ENABLE_MDNS_DISCOVERY=false`, log to files in the data
 * folder (kept for inspection; a second run restarts the same cluster from it), and stop
 * gracefully on Ctrl-C, followers first. The nodes run in their own process groups, so
 * that Ctrl-C reaches only this script.
 *
 * Usage: deno task cluster3 [--data-dir ./cluster3-data] [--base-port 7000] [--fresh]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { formatStatus } from "../src/cli/cluster_command.ts";
import { fetchStatus } from "../src/client/http_status.ts";
import type { StatusJson } from "../src/transport/cluster_rpcs.ts";

const MAIN_PATH = new URL("../main.ts", import.meta.url).pathname;
const NODE_COUNT = 3;
const HTTP_PORT_OFFSET = 1000;
const POLL_INTERVAL_MS = 100;
/** How long the cluster may take to come up before the script gives up. */
const FORMATION_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

interface ClusterNode {
  id: number;
  bindPort: number;
  child: Deno.ChildProcess;
  exited: Promise<Deno.CommandStatus>;
  lastSeen: string;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      "data-dir": { type: "string", default: "./cluster3-data" },
      "base-port": { type: "string", default: "7000" },
      fresh: { type: "boolean", default: false },
    },
  });
  const dataDir = values["data-dir"];
  const basePort = Number(values["base-port"]);
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + NODE_COUNT > 64535) {
    console.error(
      `--base-port ${values["base-port"]}: must be an integer with base+3 at most 64535`,
    );
    return 2;
  }
  if (values.fresh) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dataDir, { recursive: true });
  const absoluteDataDir = await Deno.realPath(dataDir);
  console.log(`cluster3: data and logs in ${absoluteDataDir}`);

  const nodes: ClusterNode[] = [];
  let stopping = false;
  const stopAll = async (): Promise<number> => {
    stopping = true;
    console.log("\ncluster3: stopping the nodes (Ctrl-C again kills them)…");
    const timer = setTimeout(
      () => nodes.forEach((node) => signal(node.child, "SIGKILL")),
      STOP_GRACE_MS,
    );
    // Followers first, the leader last: a leader that still has followers hands over
    // leadership before it stops, which is pointless when all of them are stopping.
    const leaderIds = (await Promise.all(nodes.map(statusOf))).map((status) => status?.leader_id);
    const ordered = [...nodes].sort((a, b) =>
      Number(leaderIds.includes(a.id)) - Number(leaderIds.includes(b.id))
    );
    for (const node of ordered) {
      signal(node.child, "SIGTERM");
      const status = await node.exited;
      console.log(`cluster3: node ${node.id} exited with code ${status.code}`);
    }
    clearTimeout(timer);
    const statuses = await Promise.all(nodes.map((node) => node.exited));
    return statuses.every((status) => status.code === 0) ? 0 : 1;
  };
  const interrupted = Promise.withResolvers<void>();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) nodes.forEach((node) => signal(node.child, "SIGKILL"));
    interrupted.resolve();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  for (let id = 1; id <= NODE_COUNT; id++) {
    const node = await spawnNode(id, { basePort, dataDir: absoluteDataDir });
    nodes.push(node);
    node.exited.then((status) => {
      if (!stopping) {
        console.error(
          `cluster3: node ${id} exited unexpectedly with code ${status.code}; see ${absoluteDataDir}/node${id}.log`,
        );
        interrupted.resolve();
      }
    });
  }

  const formed = await Promise.race([
    watchFormation(nodes).then(() => true),
    interrupted.promise.then(() => false),
  ]);
  if (formed) {
    const status = await statusOf(nodes[1]!);
    if (status !== null) console.log("\n" + formatStatus(status));
    printNextSteps(nodes, basePort);
    await interrupted.promise;
  }
  const exitCode = await stopAll();
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  return formed ? exitCode : 1;
}

async function spawnNode(
  id: number,
  options: { basePort: number; dataDir: string },
): Promise<ClusterNode> {
  const bindPort = options.basePort + id;
  const args = [
    "run",
    "-A",
    MAIN_PATH,
    "node",
    "--id",
    String(id),
    "--bind",
    `127.0.0.1:${bindPort}`,
    "--data-dir",
    `${options.dataDir}/data${id}`,
  ];
  // Node 2 joins through the founder, node 3 through node 2: a follower forwards the join.
  if (id > 1) args.push("--peers", `127.0.0.1:${bindPort - 1}`);
  const log = await Deno.open(`${options.dataDir}/node${id}.log`, { create: true, append: true });
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { BLIXARD_P2P_ENABLED: "true", BLIXARD_ENABLE_MDNS_DISCOVERY: "false", NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    // Its own process group: Ctrl-C reaches this script only, which stops the nodes in
    // order. (In the terminal's group each node would get SIGINT and then our SIGTERM,
    // which a node takes as "stop at once".)
    detached: true,
  }).spawn();
  // Written chunk by chunk: FsFile.writable holds everything back until the stream ends.
  const copied = (async () => {
    try {
      for await (const chunk of child.stderr) await log.write(chunk);
    } finally {
      log.close();
    }
  })();
  const exited = Promise.all([child.status, copied.catch(() => {})]).then(([status]) => status);
  console.log(
    `cluster3: started node ${id} (pid ${child.pid}) on 127.0.0.1:${bindPort}, HTTP ${
      bindPort + HTTP_PORT_OFFSET
    }`,
  );
  return { id, bindPort, child, exited, lastSeen: "" };
}

/** Prints each node's progress as it changes, until all three are voters with a leader. */
async function watchFormation(nodes: ClusterNode[]): Promise<void> {
  const deadline = performance.now() + FORMATION_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const statuses = await Promise.all(nodes.map(statusOf));
    statuses.forEach((status, i) => {
      const node = nodes[i]!;
      const seen = status === null ? "starting" : describe(status);
      if (seen !== node.lastSeen) console.log(`cluster3: node ${node.id}: ${seen}`);
      node.lastSeen = seen;
    });
    // Formed when every node, by its own account, is a voter among three and follows a leader.
    const formed = statuses.every((status) =>
      status !== null && status.leader_id !== null &&
      (status.role === "leader" || status.role === "follower") &&
      (status.join === null || status.join.phase === "voter") &&
      status.members.filter((member) => member.role === "voter").length === nodes.length
    );
    if (formed) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`the cluster did not form within ${FORMATION_TIMEOUT_MS / 1000} s`);
}

function describe(status: StatusJson): string {
  const join = status.join === null ? "" : `, join ${status.join.phase}`;
  const voters = status.members.filter((member) => member.role === "voter").length;
  return `${status.role}, leader ${
    status.leader_id ?? "none"
  }, term ${status.term}, ${voters} voters${join}`;
}

function statusOf(node: ClusterNode): Promise<StatusJson | null> {
  return fetchStatus(node.bindPort + HTTP_PORT_OFFSET);
}

function printNextSteps(nodes: ClusterNode[], basePort: number): void {
  const first = `127.0.0.1:${basePort + 1}`;
  const blixard = "npx deno run -A main.ts";
  console.log(`The cluster is up. Try, in another terminal:
  curl http://127.0.0.1:${basePort + 1 + HTTP_PORT_OFFSET}/bootstrap
  curl http://127.0.0.1:${basePort + 2 + HTTP_PORT_OFFSET}/status
  curl http://127.0.0.1:${basePort + 3 + HTTP_PORT_OFFSET}/metrics
  ${blixard} cluster status --peer 127.0.0.1:${basePort + 3}
  ${blixard} kv put greeting hello --peer ${first}
  ${blixard} kv get greeting --peer 127.0.0.1:${basePort + 2}
  kill -9 <pid of the leader>   # then watch another node take over: cluster status again
(pids: ${nodes.map((node) => `node ${node.id} = ${node.child.pid}`).join(", ")})
Press Ctrl-C to stop all three.`);
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // Already exited.
  }
}
