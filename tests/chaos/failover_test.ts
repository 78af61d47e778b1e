/**
 * Fault tests of reads and leadership (issue "Operating the cluster"): reads after a
 * failover never go back in time, a member cut off from the majority refuses to answer
 * rather than answer stale, and a leader stopped with SIGTERM hands over without a failed
 * write. Nodes are cut off with SIGSTOP (alive, but silent, like a partition), and resumed
 * before cleanup.
 */

import assert from "node:assert/strict";
import { BlixardClient } from "../../src/client/client.ts";
import { GET_RPC } from "../../src/transport/cluster_rpcs.ts";
import { describeRun, runBlixard, stderrLines } from "../helpers/cli.ts";
import { agreedLeader, formCluster } from "../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { RawRpc } from "../helpers/raw_rpc.ts";
import { assertEveryWriteReadable, startWriter } from "../helpers/writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes before and after each fault. */
const WRITES_PER_PHASE = 20;
/** Reads that must complete after the fault, while the writes go on. */
const READS_AFTER_FAULT = 20;
/** Deadline of one read in the reader loop: a read that cannot complete is simply retried. */
const READ_ATTEMPT_TIMEOUT_MS = 1_000;

Deno.test("reads from every survivor never return a value older than the last acknowledged write across a leader kill -9", async () => {
  const group = new NodeGroup();
  const closers: { close(): Promise<void> }[] = [];
  try {
    const nodes = await formCluster(group, 3);
    const leader = await agreedLeader(nodes);
    const survivors = nodes.filter((node) => node !== leader);
    const client = await BlixardClient.connect(survivors[0]!.address);
    closers.push(client);
    const readers = await Promise.all(survivors.map((node) => RawRpc.connect(node)));
    closers.push(...readers);

    const register = new Register(client);
    const reads = readLoop(readers, register);
    try {
      await waitUntil(
        "writes and reads before the fault",
        () => register.lastAcknowledged >= WRITES_PER_PHASE && reads.state.completed >= 5,
      );
      await leader.kill();
      register.markFault();
      await waitUntil(
        "writes and reads after the fault",
        () =>
          register.lastAcknowledged >= 2 * WRITES_PER_PHASE &&
          reads.state.afterFault >= READS_AFTER_FAULT,
      );
    } finally {
      await register.stop();
      reads.stop();
      await reads.done;
    }
    assert.deepEqual(reads.state.violations, [], "a read returned an older value");
    assert.deepEqual(register.failures, [], "writes carry sessions and are retried");

    await agreedLeader(survivors);
    for (const [i, reader] of readers.entries()) {
      const { value } = await reader.call(GET_RPC, { key: encoder.encode("register") });
      assert.ok(value !== null);
      const read = Number(decoder.decode(value));
      assert.ok(
        read >= register.lastAcknowledged,
        `node ${
          survivors[i]!.id
        } read ${read}, after ${register.lastAcknowledged} was acknowledged`,
      );
    }
  } finally {
    for (const closer of closers) await closer.close();
    await group.cleanup();
  }
});

Deno.test("a member cut off from the majority fails a read with one clear line and never prints the old value", async (t) => {
  const group = new NodeGroup();
  try {
    const nodes = await formCluster(group, 3);
    const leader = await agreedLeader(nodes);
    const put = await runBlixard(["kv", "put", "fenced", "old", "--peer", leader.address]);
    assert.equal(put.code, 0, describeRun(put));

    await t.step("on the leader, its two followers stopped", async () => {
      await assertCutOffReadFails(leader, nodes.filter((node) => node !== leader));
    });
    await agreedLeader(nodes);
    await t.step("on a follower, the leader and the other follower stopped", async () => {
      const follower = nodes.find((node) => node.id !== leader.id)!;
      await assertCutOffReadFails(follower, nodes.filter((node) => node !== follower));
    });
  } finally {
    await group.cleanup();
  }
});

Deno.test("SIGTERM to the leader hands leadership over before it exits, and no write of a writing client fails", async () => {
  const group = new NodeGroup();
  let client: BlixardClient | null = null;
  try {
    const nodes = await formCluster(group, 3);
    const leader = await agreedLeader(nodes);
    const survivors = nodes.filter((node) => node !== leader);
    client = await BlixardClient.connect(survivors[0]!.address);
    const writer = startWriter(client, { prefix: "graceful/", concurrency: 4 });
    try {
      await writer.waitForMore(WRITES_PER_PHASE);
      const status = await leader.stop("SIGTERM");
      assert.equal(status.code, 0, leader.stderr);
      await writer.waitForMore(WRITES_PER_PHASE);
    } finally {
      await writer.stop();
    }
    assert.equal(writer.failures.length, 0, writer.describeFailures());

    const log = leader.logRecords().map((record) => String(record.message));
    const handing = log.findIndex((line) => /^handing leadership to node \d+$/.test(line));
    const leads = log.findIndex((line) => /^node \d+ leads now$/.test(line));
    const stopped = log.indexOf("stopped");
    assert.ok(handing >= 0 && leads > handing && stopped > leads, log.join("\n"));
    const newLeader = await agreedLeader(survivors);
    assert.equal(log[leads], `node ${newLeader.id} leads now`);
    await assertEveryWriteReadable(client, writer.acknowledged);
  } finally {
    await client?.close();
    await group.cleanup();
  }
});

/** One key written with increasing numbers, one write at a time, acknowledgements recorded. */
class Register {
  lastAcknowledged = 0;
  /** The number written last before the fault: reads after it must be at least this. */
  acknowledgedAtFault: number | null = null;
  readonly failures: string[] = [];
  #stopping = false;
  readonly #loop: Promise<void>;

  constructor(client: BlixardClient) {
    this.#loop = (async () => {
      for (let next = 1; !this.#stopping; next++) {
        try {
          await client.put("register", String(next));
          this.lastAcknowledged = next;
        } catch (error) {
          this.failures.push(`write ${next}: ${(error as Error).message}`);
        }
      }
    })();
  }

  markFault(): void {
    this.acknowledgedAtFault = this.lastAcknowledged;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop;
  }
}

/**
 * Reads the register from each survivor in turn until stopped. Each read that completes
 * must show at least the number acknowledged before the read started.
 */
function readLoop(readers: RawRpc[], register: Register) {
  const state = { stopping: false, violations: [] as string[], completed: 0, afterFault: 0 };
  const done = (async () => {
    for (let round = 0; !state.stopping; round++) {
      const reader = readers[round % readers.length]!;
      const floor = register.lastAcknowledged;
      const faultBefore = register.acknowledgedAtFault !== null;
      let value: Uint8Array | null;
      try {
        ({ value } = await reader.call(GET_RPC, { key: encoder.encode("register") }, {
          timeoutMs: READ_ATTEMPT_TIMEOUT_MS,
        }));
      } catch {
        continue; // No leader yet, or the read could not be confirmed: never an answer.
      }
      const read = value === null ? 0 : Number(decoder.decode(value));
      if (read < floor) state.violations.push(`read ${read} after ${floor} was acknowledged`);
      state.completed++;
      if (faultBefore) state.afterFault++;
    }
  })();
  return { state, done, stop: () => state.stopping = true };
}

/** Polls `condition` until it holds, failing with `what` after 30 s. */
async function waitUntil(what: string, condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Stops `others` (SIGSTOP), asks `node` for the key with a short deadline, and resumes
 * them. The read must fail with exit 1 and one line, and print nothing on stdout.
 */
async function assertCutOffReadFails(node: NodeProcess, others: NodeProcess[]): Promise<void> {
  for (const other of others) other.pause();
  try {
    // 3 s, not less: the same deadline also bounds the command's connect to the node, which
    // must succeed on a loaded machine for the read itself to be what fails.
    const read = await runBlixard([
      "kv",
      "get",
      "fenced",
      "--peer",
      node.address,
      "--timeout",
      "3s",
    ]);
    assert.equal(read.code, 1, describeRun(read));
    assert.equal(read.stdout, "", describeRun(read));
    assert.equal(stderrLines(read).length, 1, describeRun(read));
    assert.match(
      read.stderr,
      /^blixard: kv.get did not complete within 3000 ms /,
      describeRun(read),
    );
  } finally {
    for (const other of others) other.resume();
  }
}
