import assert from "node:assert/strict";
import { waitForVoters } from "../helpers/cluster.ts";
import { NodeGroup } from "../helpers/node_process.ts";
import { freeBindPort, isTcpPortFree } from "../helpers/ports.ts";

Deno.test("--http-bind moves the HTTP server off bind port + 1000, and a joiner given its URL joins", async () => {
  const group = new NodeGroup();
  try {
    const bindPort = await freeBindPort();
    // A port handed out as a bind port has its port + 1000 free for TCP: use that one.
    const httpAddress = `127.0.0.1:${(await freeBindPort()) + 1000}`;
    const seed = await group.start({
      id: 1,
      bindPort,
      httpAddress,
      args: ["--http-bind", httpAddress],
    });
    await waitForVoters(seed, 1);
    assert.ok(isTcpPortFree(bindPort + 1000), "nothing listens at bind port + 1000");
    assert.match(seed.stderr, new RegExp(`http=${httpAddress}`));

    const joiner = await group.start({ id: 2, peers: [`http://${httpAddress}/bootstrap`] });
    await waitForVoters(joiner, 2);
  } finally {
    await group.cleanup();
  }
});
