import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { StartupError } from "../../util/errors.ts";
import { parseNodeConfig } from "../../cli/node_config.ts";
import { KvStateMachine } from "../../state_machine/kv_state_machine.ts";
import { SqliteStateStore } from "../../state_machine/sqlite_state_store.ts";
import { DATABASE_FILE_NAME, SqliteStorage } from "../../storage/sqlite_storage.ts";
import type { P2pEndpoint } from "../../transport/p2p_endpoint.ts";
import { openClusterState, removeIfPristine } from "./cluster_state.ts";
import { foundingLog } from "../../state_machine/founding.ts";
import { encodeMemberInfo } from "../../state_machine/member_info.ts";
import type { Entry } from "../../raft/types.ts";

/**
 * What `openClusterState` reads of the endpoint: its P2P id, addresses and relay. A stand-in
 * keeps these tests free of sockets.
 */
function endpointWithKey(key: string): P2pEndpoint {
  const endpoint = {
    nodeId: key.repeat(64).slice(0, 64),
    relayUrl: null,
    homeRelayUrl: () => null,
    addresses: () => ["127.0.0.1:7001"],
  };
  return endpoint as unknown as P2pEndpoint;
}

/** Runs `body` with a fresh data dir, removed afterwards. */
async function withDataDir(body: (dataDir: string) => void | Promise<void>): Promise<void> {
  const dataDir = Deno.makeTempDirSync({ prefix: "blixard-cluster-state-" });
  try {
    await body(dataDir);
  } finally {
    Deno.removeSync(dataDir, { recursive: true });
  }
}

function configFor(dataDir: string, options: { id?: number; peers?: string[] } = {}) {
  const args = ["--id", String(options.id ?? 1), "--data-dir", dataDir];
  if (options.peers !== undefined) args.push("--peers", options.peers.join(","));
  return parseNodeConfig(args, {});
}

/** Opens the state and closes its storage at once; returns how the node would start. */
function startModeOf(
  dataDir: string,
  options: { id?: number; peers?: string[]; key?: string } = {},
): string {
  const state = openClusterState(configFor(dataDir, options), {
    dataDirPath: dataDir,
    endpoint: endpointWithKey(options.key ?? "a"),
  });
  state.storage.close();
  return state.start;
}

/** A data dir whose Raft state is a term and a vote, and no log. */
function persistVoteOnly(dataDir: string): void {
  const storage = SqliteStorage.open(dataDir);
  storage.persist({ hardState: { term: 3, vote: 2, commit: 0 }, entries: [], snapshot: null });
  storage.close();
}

/** Applies the whole log to the state machine, as the node's Ready loop does once it runs. */
function applyLog(dataDir: string): void {
  const storage = SqliteStorage.open(dataDir);
  try {
    const stateMachine = new KvStateMachine(new SqliteStateStore(storage));
    const entries = storage.entries(
      stateMachine.appliedIndex() + 1,
      storage.lastIndex() + 1,
      1 << 20,
    );
    storage.transaction(() => entries.forEach((entry) => stateMachine.apply(entry)));
  } finally {
    storage.close();
  }
}

function isOneLineStartupError(message: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof StartupError && message.test(error.message) && !error.message.includes("\n");
}

Deno.test("openClusterState() founds a cluster without --peers: this node is its only voter", () =>
  withDataDir((dataDir) => {
    const state = openClusterState(configFor(dataDir), {
      dataDirPath: dataDir,
      endpoint: endpointWithKey("a"),
    });
    try {
      assert.equal(state.start, "found");
      assert.deepStrictEqual(state.storage.initialState().confState, { voters: [1], learners: [] });
      assert.equal(state.storage.initialState().hardState.commit, 3);
      assert.deepStrictEqual(state.self, {
        nodeId: 1,
        p2pNodeId: "a".repeat(64),
        addresses: ["127.0.0.1:7001"],
        relayUrl: null,
      });
    } finally {
      state.storage.close();
    }
  }));

Deno.test("openClusterState() joins with --peers and an empty data dir, writing no Raft state", () =>
  withDataDir((dataDir) => {
    const state = openClusterState(configFor(dataDir, { peers: ["127.0.0.1:7002"] }), {
      dataDirPath: dataDir,
      endpoint: endpointWithKey("a"),
    });
    try {
      assert.equal(state.start, "join");
      assert.equal(state.storage.lastIndex(), 0);
      assert.equal(state.storage.initialState().hardState.term, 0);
    } finally {
      state.storage.close();
    }
  }));

Deno.test("openClusterState() restarts from Raft state even when --peers is given", () =>
  withDataDir((dataDir) => {
    assert.equal(startModeOf(dataDir), "found");
    assert.equal(startModeOf(dataDir, { peers: ["127.0.0.1:7002"] }), "restart");
    assert.equal(startModeOf(dataDir), "restart");
  }));

Deno.test("openClusterState() restarts a node that has only voted: a term alone is Raft state", () =>
  withDataDir((dataDir) => {
    persistVoteOnly(dataDir);
    assert.equal(startModeOf(dataDir), "restart");
  }));

Deno.test("openClusterState() joins again through --peers when the data dir holds a term but no log, keeping the term and vote", () =>
  withDataDir((dataDir) => {
    persistVoteOnly(dataDir);
    // A joiner killed before its first snapshot was installed knows no member to restart with.
    assert.equal(startModeOf(dataDir, { peers: ["127.0.0.1:7002"] }), "join");
    const storage = SqliteStorage.open(dataDir);
    try {
      assert.deepEqual(storage.initialState().hardState, { term: 3, vote: 2, commit: 0 });
    } finally {
      storage.close();
    }
  }));

Deno.test("openClusterState() joins again through --peers when its log does not name it yet, keeping the log; without --peers it restarts", () =>
  withDataDir((dataDir) => {
    // Part of the log a joiner received before it was stopped: node 2 founded the cluster;
    // the entry that adds node 1 is further on.
    const storage = SqliteStorage.open(dataDir);
    const founder = { nodeId: 2, p2pNodeId: "b".repeat(64), addresses: [], relayUrl: null };
    storage.persist({ ...foundingLog(founder, "cluster-a"), snapshot: null });
    storage.close();
    assert.equal(startModeOf(dataDir, { peers: ["127.0.0.1:7002"] }), "join");
    const reopened = SqliteStorage.open(dataDir);
    try {
      assert.equal(reopened.lastIndex(), 3, "the log is kept");
    } finally {
      reopened.close();
    }
    assert.equal(startModeOf(dataDir), "restart");
  }));

Deno.test("openClusterState() joins again through --peers when its log names it only in an addition never committed (simulator seed 21884); once committed, it restarts", () =>
  withDataDir((dataDir) => {
    // The leader appended node 1's addition at index 4 and crashed before committing it: the
    // surviving cluster may have lost the entry, so node 1 is not a member yet.
    const storage = SqliteStorage.open(dataDir);
    const founder = { nodeId: 2, p2pNodeId: "b".repeat(64), addresses: [], relayUrl: null };
    const self = { nodeId: 1, p2pNodeId: "a".repeat(64), addresses: [], relayUrl: null };
    const founding = foundingLog(founder, "cluster-a");
    const addition: Entry = {
      type: "membership",
      term: 2,
      index: 4,
      change: { type: "addLearner", nodeId: 1, context: encodeMemberInfo(self) },
    };
    storage.persist({
      entries: [...founding.entries, addition],
      hardState: { term: 2, vote: 0, commit: 3 },
      snapshot: null,
    });
    storage.close();
    assert.equal(startModeOf(dataDir, { peers: ["127.0.0.1:7002"] }), "join");
    const committed = SqliteStorage.open(dataDir);
    committed.persist({ entries: [], hardState: { term: 2, vote: 0, commit: 4 }, snapshot: null });
    committed.close();
    assert.equal(startModeOf(dataDir, { peers: ["127.0.0.1:7002"] }), "restart");
  }));

Deno.test("openClusterState() refuses a data dir that belongs to another node id, naming both", () =>
  withDataDir((dataDir) => {
    assert.equal(startModeOf(dataDir, { id: 1, key: "a" }), "found");
    applyLog(dataDir);
    assert.throws(
      () => startModeOf(dataDir, { id: 2, key: "a" }),
      isOneLineStartupError(/belongs to node 1, not --id 2: start it with --id 1/),
    );
    // The storage was closed on the way out: the same dir opens again under its own id.
    assert.equal(startModeOf(dataDir, { id: 1, key: "a" }), "restart");
  }));

Deno.test("openClusterState() gives a one-line StartupError for a damaged blixard.db", async () => {
  const damages: [string, (path: string) => void][] = [
    [
      "garbage",
      (path) => Deno.writeFileSync(path, new TextEncoder().encode("not a database ".repeat(500))),
    ],
    ["truncated", (path) => Deno.truncateSync(path, 4096 + 100)],
  ];
  for (const [name, damage] of damages) {
    await withDataDir((dataDir) => {
      assert.equal(startModeOf(dataDir), "found");
      const path = `${dataDir}/${DATABASE_FILE_NAME}`;
      damage(path);
      assert.throws(
        () => startModeOf(dataDir),
        isOneLineStartupError(
          new RegExp(`${DATABASE_FILE_NAME}.*(damaged|truncated|not an SQLite)`),
        ),
        name,
      );
    });
  }
});

Deno.test("removeIfPristine() removes a database without Raft state and keeps one with it", () =>
  withDataDir((dataDir) => {
    const joining = openClusterState(configFor(dataDir, { peers: ["127.0.0.1:7002"] }), {
      dataDirPath: dataDir,
      endpoint: endpointWithKey("a"),
    });
    const path = joining.storage.path;
    removeIfPristine(joining.storage);
    for (const suffix of ["", "-wal", "-shm"]) assert.equal(existsSync(path + suffix), false);

    const founded = openClusterState(configFor(dataDir), {
      dataDirPath: dataDir,
      endpoint: endpointWithKey("a"),
    });
    removeIfPristine(founded.storage);
    assert.equal(founded.storage.lastIndex(), 3, "still open and intact");
    founded.storage.close();
    assert.equal(existsSync(path), true);
    assert.equal(startModeOf(dataDir), "restart");
  }));
