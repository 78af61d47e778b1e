/**
 * `deno task cluster3` comes up and stops cleanly on Ctrl-C (SIGINT to the script).
 */

import assert from "node:assert/strict";
import { freeConsecutiveBindPorts } from "../helpers/ports.ts";

const SCRIPT = new URL("../../scripts/cluster3.ts", import.meta.url).pathname;
const UP_TIMEOUT_MS = 60_000;

/** Whether process `pid` exists (Linux: it has a /proc entry). Sends it nothing. */
function isAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test("deno task cluster3 forms three voters, prints the status, and stops them all on SIGINT", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-cluster3-" });
  const firstPort = await freeConsecutiveBindPorts(3);
  const script = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--data-dir", dataDir, "--base-port", String(firstPort - 1)],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let output = "";
  const reading = script.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (output += chunk) }),
  );
  const errors = new Response(script.stderr).text();
  let pids: number[] = [];
  try {
    const deadline = performance.now() + UP_TIMEOUT_MS;
    while (!output.includes("Press Ctrl-C") && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(output, /The cluster is up/, output);
    pids = [...output.matchAll(/node \d = (\d+)/g)].map((match) => Number(match[1]));
    assert.equal(pids.length, 3);
    // Node 1 founds the cluster, but on a loaded machine leadership may move while the
    // others join: any node may lead by the time the table is printed.
    assert.match(output, /^[123]\s+voter \(leader\)/m, output);
    assert.match(
      output,
      /node 3: (follower|leader), leader [123], term \d+, 3 voters, join voter/,
      output,
    );
    script.kill("SIGINT");
    const status = await script.status;
    await reading;
    assert.equal(status.code, 0, `${output}\n${await errors}`);
    assert.match(output, /node 1 exited with code 0/);
    assert.match(output, /node 2 exited with code 0/);
    assert.match(output, /node 3 exited with code 0/);
    for (const pid of pids) assert.ok(!isAlive(pid), `node process ${pid} has exited`);
    for (const id of [1, 2, 3]) Deno.statSync(`${dataDir}/node${id}.log`);
  } finally {
    for (const pid of pids) if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
    try {
      script.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await script.status;
    await reading.catch(() => {});
    await errors;
    await Deno.remove(dataDir, { recursive: true });
  }
});
