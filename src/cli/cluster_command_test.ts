import assert from "node:assert/strict";
import type { StatusJson } from "../transport/cluster_rpcs.ts";
import { runCli } from "./cli.ts";
import { formatDnsRecords, formatStatus } from "./cluster_command.ts";
import { captureOutput } from "./testing.ts";
import { loadClusterSecret } from "../auth/cluster_secret.ts";
import { openDataDir } from "../node/local_state/data_dir.ts";
import {
  readSecretFingerprint,
  recordSecretFingerprint,
} from "../node/local_state/secret_fingerprint.ts";

/** A node id repeated to the 64 characters of a P2P id. */
const p2pId = (digit: string) => digit.repeat(64);

const STATUS: StatusJson = {
  node_id: 2,
  cluster_id: "5e1f0c1a-cluster",
  role: "follower",
  term: 7,
  leader_id: 1,
  commit_index: 42,
  applied_index: 41,
  members: [
    {
      node_id: 1,
      role: "voter",
      p2p_node_id: p2pId("a"),
      p2p_addresses: ["127.0.0.1:7001"],
      p2p_relay_url: null,
    },
    {
      node_id: 2,
      role: "voter",
      p2p_node_id: p2pId("b"),
      p2p_addresses: ["127.0.0.1:7002", "[::1]:7002"],
      p2p_relay_url: "https://relay.example",
    },
    { node_id: 13, role: "learner", p2p_node_id: null, p2p_addresses: [], p2p_relay_url: null },
  ],
  join: null,
};

Deno.test("formatStatus() prints the header, then one aligned row per member with the leader marked", () => {
  assert.equal(
    formatStatus(STATUS),
    [
      "cluster 5e1f0c1a-cluster",
      "node 2 is follower; leader 1; term 7; commit 42; applied 41",
      "",
      `NODE  ROLE            P2P ID${" ".repeat(60)}ADDRESSES`,
      `1     voter (leader)  ${p2pId("a")}  127.0.0.1:7001`,
      `2     voter           ${p2pId("b")}  127.0.0.1:7002,[::1]:7002 relay https://relay.example`,
      `13    learner         unknown`,
      "",
    ].join("\n"),
  );
});

Deno.test("formatStatus() shows a node before its cluster and leader are known, with its join progress", () => {
  const joining: StatusJson = {
    ...STATUS,
    cluster_id: null,
    role: "joining",
    leader_id: null,
    members: [],
    join: { phase: "connected", since: "2026-11-29T16:00:00.000Z", last_error: "seed timed out" },
  };
  assert.equal(
    formatStatus(joining),
    [
      "cluster (none yet)",
      "node 2 is joining; leader unknown; term 7; commit 42; applied 41",
      "",
      "NODE  ROLE  P2P ID  ADDRESSES",
      "",
      "join: connected since 2026-11-29T16:00:00.000Z",
      "last join error: seed timed out",
      "",
    ].join("\n"),
  );
  const noError = formatStatus({ ...joining, join: { ...joining.join!, last_error: null } });
  assert.doesNotMatch(noError, /last join error/);
});

Deno.test("formatStatus() shows a learner's catch-up and the leader's joins in flight with their lag", () => {
  const learner = formatStatus({
    ...STATUS,
    join: {
      phase: "learner",
      since: "2026-11-29T16:00:00.000Z",
      last_error: null,
      catch_up: { match_index: 30, commit_index: 42 },
    },
  });
  assert.match(learner, /^join: learner since 2026-11-29T16:00:00.000Z; log at 30 of commit 42$/m);
  const leader = formatStatus({
    ...STATUS,
    joins: [
      { node_id: 13, phase: "learner", since: "2026-11-29T16:00:01.000Z", lag: 12 },
      { node_id: 14, phase: "joining", since: "2026-11-29T16:00:02.000Z", lag: null },
    ],
  });
  assert.match(
    leader,
    /^joining: node 13 learner since 2026-11-29T16:00:01.000Z; 12 entries behind the commit index$/m,
  );
  assert.match(leader, /^joining: node 14 joining since 2026-11-29T16:00:02.000Z$/m);
});

Deno.test("formatDnsRecords() prints one zone-file TXT line per known member", async () => {
  const text = await formatDnsRecords(STATUS, { name: "members.example", clusterSecret: null });
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, 2, "node 13 has no known identity");
  assert.equal(
    lines[0],
    `members.example. 300 IN TXT "blixard1 cluster=5e1f0c1a-cluster node=1 p2p=${
      p2pId("a")
    } addrs=127.0.0.1:7001"`,
  );
  assert.match(
    lines[1]!,
    /^members\.example\. 300 IN TXT "blixard1 .* relay=https:\/\/relay\.example"$/,
  );
});

Deno.test("blixard cluster: usage errors are one line on stderr with exit 2, before any connection", async () => {
  // 127.0.0.1:1 serves nothing: a command that tried to connect would exit 1, not 2.
  const cases: [string[], RegExp][] = [
    [
      ["cluster", "remove", "--peer", "127.0.0.1:1"],
      /^blixard: --id is required; usage: blixard cluster remove/,
    ],
    [
      ["cluster", "remove", "--peer", "127.0.0.1:1", "--id", "0"],
      /^blixard: --id 0: must be an integer/,
    ],
    [["cluster", "status"], /^blixard: --peer is required/],
    [
      ["cluster", "status", "--peer", "127.0.0.1:1", "--force"],
      /^blixard: --force: not a flag of this command/,
    ],
    [
      ["cluster", "leave", "--peer", "127.0.0.1:1", "--json"],
      /^blixard: --json: not a flag of this command/,
    ],
    [
      ["cluster", "status", "--peer", "127.0.0.1:1", "--timeout", "soon"],
      /^blixard: --timeout soon: must be/,
    ],
    [
      ["cluster", "dns-records", "--peer", "127.0.0.1:1"],
      /^blixard: --name is required; usage: blixard cluster dns-records/,
    ],
    [
      ["cluster", "dns-records", "--peer", "127.0.0.1:1", "--name", "bad name"],
      /^blixard: --name bad name: not a DNS name/,
    ],
    [
      ["cluster", "status", "--peer", "127.0.0.1:1", "--dns-server", "ns.example"],
      /^blixard: --dns-server ns\.example: must be an IP address/,
    ],
    [
      ["cluster", "promote"],
      /^blixard: unknown cluster command 'promote'; see 'blixard cluster --help'/,
    ],
  ];
  for (const [args, message] of cases) {
    const output = captureOutput();
    assert.equal(await runCli(args, { env: {}, output }), 2, args.join(" "));
    assert.match(output.err, message, args.join(" "));
    assert.equal(output.err.split("\n").length, 2, `one line: ${output.err}`);
    assert.equal(output.out, "");
  }
});

Deno.test("blixard cluster: --help prints the help on stdout with exit 0; no subcommand prints it on stderr with exit 2", async () => {
  const help = captureOutput();
  assert.equal(await runCli(["cluster", "--help"], { env: {}, output: help }), 0);
  assert.match(help.out, /^Usage:\n {2}blixard cluster status/);
  const subcommandHelp = captureOutput();
  assert.equal(
    await runCli(["cluster", "remove", "--help"], { env: {}, output: subcommandHelp }),
    0,
  );
  assert.equal(subcommandHelp.out, help.out);
  const bare = captureOutput();
  assert.equal(await runCli(["cluster"], { env: {}, output: bare }), 2);
  assert.equal(bare.err, help.out);
});

Deno.test("blixard cluster new-secret FILE writes a valid secret with mode 0600, and never overwrites a file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "blixard-new-secret-" });
  try {
    const path = `${dir}/secret`;
    const written = captureOutput();
    assert.equal(await runCli(["cluster", "new-secret", path], { env: {}, output: written }), 0);
    assert.match(written.out, new RegExp(`^wrote a new cluster secret to ${path} \\(mode 0600\\)`));
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const text = await Deno.readTextFile(path);
    await loadClusterSecret({ kind: "file", path, origin: "--cluster-secret-file" });
    assert.ok(!written.out.includes(text.trim()), "the secret is not printed");

    const again = captureOutput();
    assert.equal(await runCli(["cluster", "new-secret", path], { env: {}, output: again }), 1);
    assert.equal(
      again.err,
      `blixard: ${path}: the file exists (it may be a cluster's secret): choose another path, ` +
        "or remove it first\n",
    );
    assert.equal(await Deno.readTextFile(path), text, "the existing secret is kept");

    for (const args of [["cluster", "new-secret"], ["cluster", "new-secret", "a", "b"]]) {
      const usage = captureOutput();
      assert.equal(await runCli(args, { env: {}, output: usage }), 2, args.join(" "));
      assert.match(
        usage.err,
        /^blixard: expected one FILE; usage: blixard cluster new-secret FILE\n$/,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("blixard cluster rotate-secret moves a stopped node's data dir from the old secret to the new, and refuses the wrong old one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "blixard-rotate-secret-" });
  try {
    const dataDir = `${dir}/data`;
    const [oldFile, newFile, otherFile] = ["old", "new", "other"].map((name) => `${dir}/${name}`);
    for (const path of [oldFile!, newFile!, otherFile!]) {
      assert.equal(
        await runCli(["cluster", "new-secret", path], { env: {}, output: captureOutput() }),
        0,
      );
    }
    const fingerprintOf = async (path: string) =>
      await (await loadClusterSecret({ kind: "file", path, origin: "--cluster-secret-file" }))
        .fingerprint();
    await Deno.mkdir(dataDir, { mode: 0o700 });
    recordSecretFingerprint(dataDir, await fingerprintOf(oldFile!));
    const rotate = async (old: string) => {
      const output = captureOutput();
      const code = await runCli([
        "cluster",
        "rotate-secret",
        "--data-dir",
        dataDir,
        "--cluster-secret-file",
        old,
        "--new-secret-file",
        newFile!,
      ], { env: {}, output });
      return { code, output };
    };
    const wrong = await rotate(otherFile!);
    assert.equal(wrong.code, 1);
    assert.match(wrong.output.err, /^blixard: data dir .* records the secret with fingerprint/);
    assert.equal(readSecretFingerprint(dataDir), await fingerprintOf(oldFile!));
    const rotated = await rotate(oldFile!);
    assert.equal(rotated.code, 0, rotated.output.err);
    assert.match(
      rotated.output.out,
      /now records the new secret: start the node with --cluster-secret-file/,
    );
    assert.equal(readSecretFingerprint(dataDir), await fingerprintOf(newFile!));

    const locked = await openDataDir(dataDir);
    try {
      const busy = await rotate(oldFile!);
      assert.equal(busy.code, 1);
      assert.match(busy.output.err, /is in use by another blixard process/);
    } finally {
      await locked.release();
    }
    const usage = captureOutput();
    assert.equal(
      await runCli(["cluster", "rotate-secret", "--data-dir", dataDir], { env: {}, output: usage }),
      2,
    );
    assert.match(
      usage.err,
      /^blixard: --data-dir, --cluster-secret-file and --new-secret-file are required/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
