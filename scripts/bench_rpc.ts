/**
 * What one RPC costs on loopback, in this process: a call on its own stream (`callRpc`:
 * open, write, finish, read on the caller; accept, read, write, finish on the server)
 * against the same call on the connection's session (`RpcClient`: one write and one read
 * on each side). The two are interleaved in blocks, so that a loaded machine weighs on
 * both alike; it prints the median round trip and the process's CPU time per call (both
 * sides run here, so it is the caller's and the server's together).
 *
 * Usage: deno run -A scripts/bench_rpc.ts [--calls 2000] [--block 100]
 *
 * @module
 */

import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { RPC_ALPN } from "../src/transport/alpn.ts";
import { PING_RPC, pingHandler } from "../src/transport/ping_rpc.ts";
import { callRpc, RPC_FRAME_BYTES_MAX, RpcClient, RpcServer } from "../src/transport/rpc.ts";
import { bindLoopbackEndpoint, eventually, peerAddressOf } from "../src/transport/testing.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      calls: { type: "string", default: "2000" },
      block: { type: "string", default: "100" },
    },
  });
  const calls = Number(values.calls);
  const block = Number(values.block);
  const server = await bindLoopbackEndpoint();
  const client = await bindLoopbackEndpoint();
  const rpcServer = new RpcServer();
  const rpcClient = new RpcClient(client);
  try {
    rpcServer.register(PING_RPC, pingHandler({ nodeId: 1, p2pNodeId: server.nodeId }));
    rpcServer.serve(server);
    const peer = peerAddressOf(server);
    await rpcClient.call(peer, PING_RPC, {}, { timeoutMs: 5000 });
    await eventually("the session is open", () => rpcClient.hasSession(server.nodeId));
    const connection = await client.connect(peer, RPC_ALPN, {
      timeoutMs: 5000,
      frameBytesMax: RPC_FRAME_BYTES_MAX,
    });
    const modes = {
      "own stream per call": () => callRpc(connection, PING_RPC, {}, { timeoutMs: 5000 }),
      "session": () => rpcClient.call(peer, PING_RPC, {}, { timeoutMs: 5000 }),
    };
    const results = new Map<string, { roundTripsMs: number[]; cpuMicros: number }>();
    for (const name of Object.keys(modes)) results.set(name, { roundTripsMs: [], cpuMicros: 0 });
    for (let done = 0; done < calls; done += block) {
      for (const [name, call] of Object.entries(modes)) {
        const result = results.get(name)!;
        const cpuBefore = cpuUsage();
        for (let i = 0; i < block; i++) {
          const startMs = performance.now();
          await call();
          result.roundTripsMs.push(performance.now() - startMs);
        }
        const cpu = cpuUsage(cpuBefore);
        result.cpuMicros += cpu.user + cpu.system;
      }
    }
    console.log("| path | calls | median round trip ms | p90 ms | CPU µs per call |");
    console.log("| --- | ---: | ---: | ---: | ---: |");
    for (const [name, { roundTripsMs, cpuMicros }] of results) {
      roundTripsMs.sort((a, b) => a - b);
      const at = (q: number) => roundTripsMs[Math.floor(q * (roundTripsMs.length - 1))]!;
      console.log(
        `| ${name} | ${roundTripsMs.length} | ${at(0.5).toFixed(3)} | ${at(0.9).toFixed(3)} | ${
          (cpuMicros / roundTripsMs.length).toFixed(0)
        } |`,
      );
    }
  } finally {
    await rpcClient.close();
    await client.close();
    await server.close();
  }
}
