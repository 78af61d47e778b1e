/**
 * Invite tickets end to end (issue 11), on one cluster with a secret, with real child
 * nodes on loopback: a node joins by `--join TICKET` alone (no --peers, no HTTP, no
 * secret), receives the secret, and restarts without the ticket as an ordinary member; a
 * used, an expired and a revoked ticket are each refused with one line naming which; the
 * CLI prints a ticket and lists the outstanding ones; a node that joins by a learner ticket
 * (`--as learner`) catches up and stays a learner, saying why; a joiner killed during its
 * claim (its data dir holds a database without Raft state) claims again at its next start.
 */

import assert from "node:assert/strict";
import { BlixardClient } from "../../src/client/client.ts";
import {
  decodeInviteTicket,
  encodeInviteTicket,
  newToken,
} from "../../src/bootstrap/invite_ticket.ts";
import {
  FINGERPRINT_FILE_NAME,
  RECEIVED_SECRET_FILE_NAME,
} from "../../src/node/local_state/secret_fingerprint.ts";
import { describeRun, runBlixard } from "../helpers/cli.ts";
import { waitForVoters } from "../helpers/cluster.ts";
import { INVITED_AS_LEARNER } from "../../src/node/membership/autopilot.ts";
import { NodeGroup, type NodeProcess } from "../helpers/node_process.ts";
import { SECRET_TEXT, secretOf, writeSecretFile } from "../helpers/secrets.ts";
import { SqliteStorage } from "../../src/storage/sqlite_storage.ts";

/** The last line of `node`'s stderr: what the operator reads when a start fails. */
function lastLine(node: NodeProcess): string {
  return node.stderr.trimEnd().split("\n").at(-1) ?? "";
}

/** Polls of `/status`, 100 ms apart, until the leader names its path to the new member. */
const PATH_POLLS_MAX = 300;

Deno.test("invite tickets: a join by ticket alone becomes a member that restarts without it; used, expired and revoked tickets are refused; a learner ticket's member stays a learner", async () => {
  const group = new NodeGroup();
  const secretDir = Deno.makeTempDirSync({ prefix: `blixard-invite-${Deno.pid}-` });
  let client: BlixardClient | null = null;
  try {
    const secretFile = writeSecretFile(secretDir, "secret", SECRET_TEXT);
    const founder = await group.start({ id: 1, args: ["--cluster-secret-file", secretFile] });
    await waitForVoters(founder, 1);
    client = await BlixardClient.connect(founder.address, {
      clusterSecret: await secretOf(SECRET_TEXT),
    });
    const createdBy = "e2e@test";
    // Made first, so that it has expired by the time it is tried.
    const expiring = await client.invite({ ttlMs: 1_000, uses: 1, createdBy });
    const revoked = await client.invite({ ttlMs: 60_000, uses: 1, createdBy });
    const outstanding = await client.invite({ ttlMs: 60_000, uses: 3, createdBy });
    await client.revokeInvite(revoked.tokenHash.slice(0, 8));

    // `blixard cluster COMMAND` at `peer`, proving the secret, and checked to exit 0.
    const cluster = async (command: string, peer: NodeProcess, ...args: string[]) => {
      const run = await runBlixard(
        // A live node answers at once; the generous timeout is for a loaded machine.
        [
          "cluster",
          command,
          "--peer",
          peer.address,
          "--timeout",
          "20s",
          "--cluster-secret-file",
          secretFile,
          ...args,
        ],
      );
      assert.equal(run.code, 0, describeRun(run));
      return run;
    };
    const printed = await cluster("invite", founder, "--ttl", "10m");
    const ticket = printed.stdout.trim();
    assert.match(ticket, /^blx1[A-Za-z0-9_-]+$/);
    assert.ok(ticket.length < 600, `${ticket.length} characters`);
    assert.equal(
      decodeInviteTicket(ticket).members[0]?.p2pNodeId,
      (await client.status()).members[0]?.p2p_node_id,
    );

    const joiner = await group.start({ id: 2, args: ["--join", ticket] });
    await waitForVoters(joiner, 2);
    const secretPath = `${joiner.dataDir}/${RECEIVED_SECRET_FILE_NAME}`;
    assert.equal(Deno.statSync(secretPath).mode! & 0o777, 0o600);
    assert.equal(Deno.readTextFileSync(secretPath).trim(), btoaHex(SECRET_TEXT));
    assert.ok(Deno.statSync(`${joiner.dataDir}/${FINGERPRINT_FILE_NAME}`).isFile);
    // The leader shows the path its Raft connection to the new member takes, and its RTT.
    // Iroh picks the path a moment after the connection opens ("none" until then).
    let seen = (await client.status()).paths?.find((entry) => entry.node_id === 2);
    for (let poll = 0; poll < PATH_POLLS_MAX && seen?.path !== "direct"; poll++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      seen = (await client.status()).paths?.find((entry) => entry.node_id === 2);
    }
    assert.equal(seen?.path, "direct", JSON.stringify(seen));
    assert.equal(typeof seen?.rtt_ms, "number", JSON.stringify(seen));

    // A learner ticket, used once of its two uses while the refused joins below run.
    const learnerInvite = await cluster("invite", founder, "--as", "learner", "--uses", "2");
    const learner = await group.start({ id: 7, args: ["--join", learnerInvite.stdout.trim()] });

    // Refused joins, all at once: each exits 1 with one line naming why.
    const unknown = encodeInviteTicket({ ...decodeInviteTicket(ticket), token: newToken() });
    const refusals: [number, string, RegExp][] = [
      [3, ticket, /ticket is used/],
      [4, expiring.ticket, /ticket is expired/],
      [5, revoked.ticket, /ticket is revoked/],
      [6, unknown, /ticket is unknown/],
    ];
    const refused = await Promise.all(
      refusals.map(([id, text]) =>
        group.start({ id, args: ["--join", text, "--join-timeout", "20s"] })
      ),
    );
    for (const [index, node] of refused.entries()) {
      const status = await node.waitForExit({ timeoutMs: 30_000 });
      assert.equal(status.code, 1, node.stderr);
      assert.match(lastLine(node), refusals[index]![2], node.stderr);
      // The storage opened while the ticket was with the leader is gone again: the next
      // start of this data dir is a first start, not a restart.
      assert.throws(() => Deno.statSync(`${node.dataDir}/blixard.db`), Deno.errors.NotFound);
    }

    const listed = await cluster("invites", founder);
    const rows = listed.stdout.trim().split("\n");
    assert.equal(rows.length, 3, listed.stdout);
    assert.ok(
      rows.some((row) =>
        new RegExp(`^${outstanding.tokenHash.slice(0, 12)} .* 3 +voter +${createdBy}$`).test(row)
      ),
      listed.stdout,
    );
    assert.ok(rows.some((row) => / 1 +learner +\S+$/.test(row)), listed.stdout);

    // Once the learner has caught up its join is over: the leader stops listing it among the
    // joins in flight, and keeps it a learner for its ticket's role alone.
    let leaderView = await client.status();
    for (
      let poll = 0;
      poll < PATH_POLLS_MAX && leaderView.joins?.some((join) => join.node_id === 7) !== false;
      poll++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      leaderView = await client.status();
    }
    assert.ok(
      leaderView.joins?.every((join) => join.node_id !== 7),
      JSON.stringify(leaderView.joins),
    );
    assert.deepStrictEqual(
      leaderView.members.find((member) => member.node_id === 7)?.role,
      "learner",
      JSON.stringify(leaderView.members),
    );
    const own = await cluster("status", learner);
    assert.ok(own.stdout.includes(`learner: ${INVITED_AS_LEARNER}`), own.stdout);

    // An ordinary member now: it restarts from its data dir, with neither ticket nor flag.
    await joiner.stop();
    const restarted = await group.start({ id: 2, bindPort: joiner.bindPort });
    await waitForVoters(restarted, 2);
    await restarted.waitForLog(/cluster secret from --data-dir secret/);
    // Seconds after it caught up, and after node 2 restarted, still a learner.
    const members = (await client.status()).members;
    assert.equal(members.find((member) => member.node_id === 7)?.role, "learner");

    // A ticket joiner killed -9 during its claim leaves the database it opened meanwhile,
    // holding no Raft state: the next start with the same ticket claims it again.
    const retried = await client.invite({ ttlMs: 60_000, uses: 1, createdBy });
    SqliteStorage.open(group.dataDirFor(8)).close();
    const reclaimed = await group.start({ id: 8, args: ["--join", retried.ticket] });
    await waitForVoters(reclaimed, 3);
  } finally {
    await client?.close();
    await group.cleanup();
    Deno.removeSync(secretDir, { recursive: true });
  }
});

/** The base64 a secret file holds for the 64 hex digits `hex`. */
function btoaHex(hex: string): string {
  const bytes = Uint8Array.from(
    { length: hex.length / 2 },
    (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
  );
  return btoa(String.fromCharCode(...bytes));
}
