/**
 * Reproduces the test-runner segfault that `docs/decisions.md` ("Native calls end before their
 * objects") explains: writes copies of a test module that opens two endpoints on loopback,
 * resets a few streams without awaiting the resets (as `FramedStream.reset()` does), and closes
 * both endpoints, then runs `deno test --parallel` on them and reports how each run ended.
 * With `--close-not-awaited` the modules end while their endpoints are still closing (Deno runs
 * Node-API finalizers when a test module ends). The `unload` guard of `native_calls.ts` now
 * waits for the closes themselves, so with `--streams 0` every run must pass (before the guard:
 * "JoinHandle polled after completion", abort); with streams, their calls still running at the
 * module's end still crash it. With closes awaited, every run must pass.
 *
 *   deno run -A scripts/repro_native_finalizers.ts [--modules 60] [--runs 3] [--streams 5]
 *     [--close-not-awaited]
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    modules: { type: "string", default: "60" },
    runs: { type: "string", default: "3" },
    streams: { type: "string", default: "5" },
    "close-not-awaited": { type: "boolean", default: false },
  },
});
const modules = Number(values.modules);
const runs = Number(values.runs);
const streams = Number(values.streams);
if (
  !Number.isInteger(modules) || modules < 1 || !Number.isInteger(runs) || runs < 1 ||
  !Number.isInteger(streams) || streams < 0
) {
  console.error("blixard repro: --modules and --runs take positive integers, --streams 0 or more");
  Deno.exit(2);
}
const close = values["close-not-awaited"]
  ? "client.close();\n    server.close();"
  : "await client.close();\n    await server.close();";

const MODULE =
  `import { bindLoopbackEndpoint, echo, peerAddressOf } from "../src/transport/testing.ts";

// The sanitizers off, as in a test that leaves work behind: they change when the module ends.
Deno.test({
  name: "ends after resets nobody awaits",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  for (let round = 0; round < 3; round++) {
    const server = await bindLoopbackEndpoint();
    const client = await bindLoopbackEndpoint();
    server.handle("blixard/test/1", echo);
    const peer = peerAddressOf(server);
    const connection = await client.connect(peer, "blixard/test/1", { timeoutMs: 10_000 });
    for (let index = 0; index < ${streams}; index++) {
      const stream = await connection.openStream();
      await stream.send({ index, data: new Uint8Array(100) });
      await stream.receive();
      stream.reset(0);
    }
    if (round < 2) {
      await client.close();
      await server.close();
      continue;
    }
    // The last round's closes are what the module ends with.
    ${close}
  }
});
`;

const root = new URL("..", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ dir: root, prefix: ".repro-native-" });
try {
  for (let index = 0; index < modules; index++) {
    await Deno.writeTextFile(`${dir}/m${index}_test.ts`, MODULE);
  }
  for (let run = 1; run <= runs; run++) {
    const started = performance.now();
    const { code, signal } = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--parallel", dir],
      cwd: root,
      stdout: "null",
      stderr: "null",
    }).output();
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    console.log(`run ${run}: ${signal ?? `exit ${code}`} after ${seconds} s`);
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
