/**
 * The key/value API end to end (issue "Operating the cluster"): `blixard kv …` as a child
 * process (exit code, stdout, stderr) and `BlixardClient`, against one real 3-node cluster
 * that the checks share (each uses keys of its own).
 *
 * Exit codes of `kv` (DESIGN.md section 4a): 0 success; 1 the operation failed or the key
 * is absent; 2 the command line is wrong. An empty KEY, a KEY over 4096 bytes and a VALUE
 * over 256 KiB are usage errors: the command refuses them before it connects to anything.
 */

import assert from "node:assert/strict";
import { BlixardClient, ClientError } from "../../src/client/client.ts";
import {
  DELETE_RPC,
  KEY_BYTES_MAX,
  LIST_RESPONSE_BYTES_MAX,
  LIST_RPC,
  PUT_RPC,
  VALUE_BYTES_MAX,
} from "../../src/transport/cluster_rpcs.ts";
import { RpcError } from "../../src/transport/rpc.ts";
import { agreedLeader, CLUSTER_WAIT_MS, formCluster, statusOf } from "../helpers/cluster.ts";
import { describeRun, runBlixard, stderrLines } from "../helpers/cli.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { RawRpc } from "../helpers/raw_rpc.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `blixard kv <args…> --peer <node>`. */
function kv(node: NodeProcess, ...args: string[]) {
  const timeout = args.includes("--timeout") ? [] : ["--timeout", `${OPERATION_WAIT_S}s`];
  return runBlixard(["kv", ...args, "--peer", node.address, ...timeout]);
}

/**
 * The deadline of every operation of this file (client and CLI). Values of hundreds of KiB
 * cross the Iroh binding as JavaScript numbers (docs/benchmarks.md), so on a loaded machine
 * one such write can hold a node's event loop long enough for an election, which the
 * operations after it then wait out and retry: the default 10 s is not generous there.
 */
const OPERATION_WAIT_S = Math.ceil((2 * CLUSTER_WAIT_MS) / 1000);
const OPERATION_WAIT = { timeoutMs: OPERATION_WAIT_S * 1000 };

Deno.test("kv through the CLI and BlixardClient on a 3-node cluster", async (t) => {
  const group = new NodeGroup();
  let client: BlixardClient | null = null;
  try {
    const nodes = await formCluster(group, 3);
    const leader = await agreedLeader(nodes);
    const follower = nodes.find((node) => node !== leader)!;
    client = await BlixardClient.connect(follower.address);
    const context = { nodes, leader, follower, client };

    await t.step(
      "kv put on a follower prints the commit index; kv get on every member reads it",
      () => putThroughFollower(context),
    );
    await t.step(
      "kv get of an absent key exits 1 with one line on stderr",
      () => getAbsent(context),
    );
    await t.step(
      "kv delete removes a key; deleting it again says it did not exist",
      () => deleteKey(context),
    );
    await t.step(
      "kv list prints the keys under a prefix in key order, as text and as JSON",
      () => listPrefix(context),
    );
    await t.step(
      "kv.list answers are bounded in bytes and the client and CLI page past them",
      () => listPaging(context),
    );
    await t.step(
      "an empty value is stored and read back as empty, not as absent",
      () => emptyValue(context),
    );
    await t.step(
      "an empty key and an oversize key or value are refused before anything is sent",
      () => refusedArguments(context),
    );
    await t.step(
      "binary keys and values round-trip through the client",
      () => binaryRoundTrip(context),
    );
    await t.step(
      "a write retried with the same client id and sequence is applied once",
      () => retriedWriteAppliedOnce(context),
    );
  } finally {
    await client?.close();
    await group.cleanup();
  }
});

interface Context {
  nodes: NodeProcess[];
  leader: NodeProcess;
  follower: NodeProcess;
  client: BlixardClient;
}

async function putThroughFollower({ nodes, leader, follower }: Context): Promise<void> {
  const commitBefore = (await statusOf(leader)).commit_index;
  const put = await kv(follower, "put", "greeting", "hello");
  assert.equal(put.code, 0, describeRun(put));
  assert.match(put.stdout, /^[0-9]+\n$/, describeRun(put));
  assert.equal(put.stderr, "");
  const index = Number(put.stdout);
  assert.ok(index > commitBefore, `index ${index} is new (commit index was ${commitBefore})`);
  assert.ok((await statusOf(leader)).commit_index >= index, "the printed index is committed");
  // Linearizable: a read that starts after the put was acknowledged sees it on every member.
  const reads = await Promise.all(nodes.map((node) => kv(node, "get", "greeting")));
  for (const read of reads) {
    assert.equal(read.code, 0, describeRun(read));
    assert.equal(read.stdout, "hello\n");
    assert.equal(read.stderr, "");
  }
  const second = await kv(follower, "put", "greeting", "hello again");
  assert.equal(second.code, 0, describeRun(second));
  assert.ok(Number(second.stdout) > index, "a later write commits at a later index");
}

async function getAbsent({ follower }: Context): Promise<void> {
  const read = await kv(follower, "get", "no-such-key");
  assert.equal(read.code, 1, describeRun(read));
  assert.equal(read.stdout, "");
  assert.deepEqual(stderrLines(read), ['blixard: key "no-such-key" not found']);
}

async function deleteKey({ leader, follower, client }: Context): Promise<void> {
  await client.put("to-delete", "x", OPERATION_WAIT);
  const removed = await kv(follower, "delete", "to-delete");
  assert.equal(removed.code, 0, describeRun(removed));
  assert.match(removed.stdout, /^[0-9]+\n$/);
  assert.equal(removed.stderr, "");
  const [read, again] = await Promise.all([
    kv(leader, "get", "to-delete"),
    kv(follower, "delete", "to-delete"),
  ]);
  assert.equal(read.code, 1, describeRun(read));
  assert.equal(again.code, 0, describeRun(again));
  assert.deepEqual(stderrLines(again), ['blixard: key "to-delete" did not exist']);
  assert.equal(await client.get("to-delete", OPERATION_WAIT), null);
}

async function listPrefix({ follower, client }: Context): Promise<void> {
  await client.put("fruit/banana", "yellow", OPERATION_WAIT);
  await client.put("fruit/apple", "red", OPERATION_WAIT);
  await client.put("fruity", "not under fruit/", OPERATION_WAIT);
  const [text, json] = await Promise.all([
    kv(follower, "list", "fruit/"),
    kv(follower, "list", "fruit/", "--json"),
  ]);
  assert.equal(text.code, 0, describeRun(text));
  assert.equal(text.stdout, "fruit/apple\tred\nfruit/banana\tyellow\n");
  assert.equal(json.code, 0, describeRun(json));
  assert.deepEqual(JSON.parse(json.stdout), [
    { key: "fruit/apple", value: "red" },
    { key: "fruit/banana", value: "yellow" },
  ]);
}

async function listPaging({ leader, follower, client }: Context): Promise<void> {
  // Four 200 KiB values: more than one answer may carry.
  const valueBytes = 200 * 1024;
  const pageCount = 4;
  assert.ok(pageCount * valueBytes > LIST_RESPONSE_BYTES_MAX, "the values cannot fit one answer");
  const expected = Array.from({ length: pageCount }, (_, i) => ({
    key: `page/${i}`,
    value: String.fromCharCode(97 + i).repeat(valueBytes),
  }));
  for (const { key, value } of expected) await client.put(key, value, OPERATION_WAIT);
  await client.put("pagex", "outside the prefix", OPERATION_WAIT);

  const raw = await RawRpc.connect(leader);
  try {
    const first = await raw.call(LIST_RPC, {
      prefix: encoder.encode("page/"),
      startAfter: null,
      limit: 100,
    });
    assert.equal(first.more, true, "the first answer says more follow");
    assert.ok(first.items.length >= 1 && first.items.length < pageCount, `${first.items.length}`);
    const bytes = first.items.reduce((sum, item) => sum + item.key.length + item.value.length, 0);
    assert.ok(bytes <= LIST_RESPONSE_BYTES_MAX, `one answer carries ${bytes} bytes`);
  } finally {
    await raw.close();
  }

  const listed = await client.list("page/", OPERATION_WAIT);
  assert.deepEqual(
    listed.map((item) => ({ key: decoder.decode(item.key), value: decoder.decode(item.value) })),
    expected,
  );
  const cli = await kv(follower, "list", "page/");
  assert.equal(cli.code, 0, describeRun(cli));
  assert.equal(cli.stdout, expected.map(({ key, value }) => `${key}\t${value}\n`).join(""));
}

async function emptyValue({ nodes, client }: Context): Promise<void> {
  const put = await kv(nodes[2]!, "put", "empty", "");
  assert.equal(put.code, 0, describeRun(put));
  const read = await kv(nodes[0]!, "get", "empty");
  assert.equal(read.code, 0, describeRun(read));
  assert.equal(read.stdout, "\n");
  assert.deepEqual(await client.get("empty", OPERATION_WAIT), new Uint8Array());
  await client.put("empty too", new Uint8Array(), OPERATION_WAIT);
  assert.deepEqual(await client.get("empty too", OPERATION_WAIT), new Uint8Array());
}

/**
 * The highest commit index and term any member reports. A refused request appends nothing;
 * a leader elected meanwhile (a loaded machine) appends one empty entry for its term.
 */
async function logPosition(nodes: NodeProcess[]): Promise<{ commit: number; term: number }> {
  const statuses = await Promise.all(nodes.map(statusOf));
  return {
    commit: Math.max(...statuses.map((status) => status.commit_index)),
    term: Math.max(...statuses.map((status) => status.term)),
  };
}

async function refusedArguments({ nodes, follower, client }: Context): Promise<void> {
  const before = await logPosition(nodes);
  const longKey = "k".repeat(KEY_BYTES_MAX + 1);
  // Refused before connecting: the peer of this one does not even exist.
  const deadPeer = "127.0.0.1:1";
  const [emptyPut, emptyGet, longGet] = await Promise.all([
    runBlixard(["kv", "put", "", "value", "--peer", deadPeer]),
    kv(follower, "get", ""),
    kv(follower, "get", longKey),
  ]);
  for (const run of [emptyPut, emptyGet]) {
    assert.equal(run.code, 2, describeRun(run));
    assert.equal(run.stdout, "");
    assert.equal(stderrLines(run).length, 1, describeRun(run));
    assert.match(run.stderr, /^blixard: KEY is empty/, describeRun(run));
  }
  assert.equal(longGet.code, 2, describeRun(longGet));
  assert.match(longGet.stderr, /KEY has 4097 bytes; the limit is 4096/, describeRun(longGet));

  await assert.rejects(client.put("", "value", OPERATION_WAIT), (error: unknown) => {
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, "invalid");
    assert.match(error.message, /the key is empty/);
    return true;
  });
  const tooBig = new Uint8Array(VALUE_BYTES_MAX + 1);
  await assert.rejects(client.put("too-big", tooBig, OPERATION_WAIT), (error: unknown) => {
    assert.ok(error instanceof ClientError);
    assert.equal(error.code, "invalid");
    assert.match(error.message, /262145 bytes; the limit is 262144 \(256 KiB\)/);
    return true;
  });
  const after = await logPosition(nodes);
  assert.ok(
    after.commit - before.commit <= after.term - before.term,
    `nothing was proposed: ${JSON.stringify({ before, after })}`,
  );
  // The limit itself is allowed.
  const atLimit = new Uint8Array(VALUE_BYTES_MAX).fill(7);
  await client.put("at-limit", atLimit, OPERATION_WAIT);
  assert.deepEqual(await client.get("at-limit", OPERATION_WAIT), atLimit);
}

async function binaryRoundTrip({ client }: Context): Promise<void> {
  const key = new Uint8Array([0, 0xff, 0x80, 0x0a, 0x00, 0x7f, 0xc3]);
  const value = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7) % 256);
  await client.put(key, value, OPERATION_WAIT);
  assert.deepEqual(await client.get(key, OPERATION_WAIT), value);
  const listed = await client.list(key.subarray(0, 3), OPERATION_WAIT);
  assert.deepEqual(listed, [{ key, value }]);
}

async function retriedWriteAppliedOnce({ leader, follower, client }: Context): Promise<void> {
  const raw = await RawRpc.connect(follower);
  try {
    const request = { clientId: `retry-${crypto.randomUUID()}`, sequence: 1 };
    const key = encoder.encode("retried");
    const first = await raw.call(PUT_RPC, { key, value: encoder.encode("one"), request });
    const again = await raw.call(PUT_RPC, { key, value: encoder.encode("one"), request });
    assert.equal(again.index, first.index, "the retry is answered with the first entry's index");
    // A retry carrying another value shows whether the command ran again: it must not.
    const changed = await raw.call(PUT_RPC, { key, value: encoder.encode("two"), request });
    assert.equal(changed.index, first.index);
    assert.equal(decoder.decode((await client.get("retried", OPERATION_WAIT))!), "one");

    const next = { ...request, sequence: 2 };
    const deleted = await raw.call(DELETE_RPC, { key, request: next });
    const deletedAgain = await raw.call(DELETE_RPC, { key, request: next });
    assert.deepEqual(deletedAgain, deleted, "a second run would have found no key");
    assert.equal(deleted.existed, true);
    assert.equal(await client.get("retried", OPERATION_WAIT), null);

    await assert.rejects(
      raw.call(PUT_RPC, { key, value: encoder.encode("stale"), request }),
      (error: unknown) => error instanceof RpcError && /older than its latest/.test(error.message),
    );
    assert.equal(
      await client.get("retried", OPERATION_WAIT),
      null,
      "a stale sequence number changes nothing",
    );
    assert.ok((await statusOf(leader)).commit_index > first.index);
  } finally {
    await raw.close();
  }
}
