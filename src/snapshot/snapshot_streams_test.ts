import assert from "node:assert/strict";
import { BackupService } from "../backup/backup_service.ts";
import { importTransferKey, openFrames, TransferError } from "../backup/backup_transfer.ts";
import type { InstallSnapshot, Message, Snapshot } from "../raft/types.ts";
import { KvStateMachine } from "../state_machine/kv_state_machine.ts";
import { SqliteStateStore } from "../state_machine/sqlite_state_store.ts";
import { SqliteStorage } from "../storage/sqlite_storage.ts";
import { decodeSnapshotOffer, encodeStagedReference } from "./snapshot_offer.ts";
import { SnapshotStreams } from "./snapshot_streams.ts";

const encoder = new TextEncoder();

interface Side {
  dir: string;
  storage: SqliteStorage;
  store: SqliteStateStore;
  stateMachine: KvStateMachine;
}

function openSide(): Side {
  const dir = Deno.makeTempDirSync({ prefix: "blixard-snapshot-test-" });
  const storage = SqliteStorage.open(dir);
  const store = new SqliteStateStore(storage);
  return { dir, storage, store, stateMachine: new KvStateMachine(store) };
}

function closeSide(side: Side): void {
  side.storage.close();
  Deno.removeSync(side.dir, { recursive: true });
}

/** A leader-side state of `keys` pairs at applied index `index` (and a log entry there). */
function fillLeader(side: Side, keys: number, index: number): void {
  side.storage.persist({
    hardState: { term: 2, vote: 1, commit: index },
    entries: Array.from({ length: index }, (_, i) => ({
      type: "normal" as const,
      term: 2,
      index: i + 1,
      data: new Uint8Array(),
    })),
    snapshot: null,
  });
  side.storage.transaction(() => {
    for (let i = 0; i < keys; i++) {
      side.store.put(encoder.encode(`key-${i}`), new Uint8Array(300).fill(i % 251));
    }
    side.store.setClusterId("snapshot-test");
    side.store.setAppliedConfState({ voters: [1, 2, 3], learners: [4] });
    side.store.setAppliedIndex(index);
  });
}

/** A leader and a follower joined in memory: the follower fetches straight from the leader's BackupService. */
function pair(leader: Side, follower: Side, options: { chunkBytes: number }) {
  const sent: Message[] = [];
  const stepped: Message[] = [];
  const reports: boolean[] = [];
  const backups = new BackupService({
    nodeId: 1,
    storage: leader.storage,
    stateMachine: leader.stateMachine,
    raft: { read: (fn) => Promise.resolve(fn()) },
  });
  const sender = new SnapshotStreams({
    storage: leader.storage,
    images: backups,
    send: (messages) => sent.push(...messages),
    step: () => {},
    report: (_nodeId, ok) => reports.push(ok),
    httpUrls: () => ["http://127.0.0.1:1/"],
    chunkBytes: options.chunkBytes,
  });
  let tamper: ((chunk: Uint8Array, n: number) => Uint8Array | null) | null = null;
  const receiver = new SnapshotStreams({
    storage: follower.storage,
    images: { openImage: () => Promise.reject(new Error("not a leader")) },
    send: () => {},
    step: (message) => stepped.push(message),
    report: () => {},
    httpUrls: () => [],
    fetchChunks: async (url, key) => {
      const body = backups.stream(url.searchParams.get("id")!);
      if (body === null) throw new TransferError("no such image");
      const frames = openFrames(body, await importTransferKey(key));
      return (async function* () {
        let n = 0;
        for await (const chunk of frames) {
          const changed = tamper === null ? chunk : tamper(chunk, n);
          n += 1;
          if (changed === null) throw new TransferError("connection cut");
          yield changed;
        }
      })();
    },
  });
  return {
    backups,
    sender,
    receiver,
    sent,
    stepped,
    reports,
    setTamper: (fn: typeof tamper) => tamper = fn,
  };
}

const request: InstallSnapshot = {
  type: "InstallSnapshot",
  term: 2,
  from: 1,
  to: 4,
  snapshot: {
    metadata: { index: 50, term: 2, confState: { voters: [1, 2, 3], learners: [4] } },
    data: new Uint8Array(),
  },
};

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("SnapshotStreams: an image of many chunks is staged, verified, and switched over in the Ready's transaction", async () => {
  const leader = openSide();
  const follower = openSide();
  try {
    fillLeader(leader, 500, 60);
    const { sender, receiver, sent, stepped, reports } = pair(leader, follower, {
      chunkBytes: 2048,
    });
    sender.send(request);
    sender.send(request); // the core's retry while the transfer runs is absorbed
    await waitFor("the offer", () => sent.length === 1);
    const offerMessage = sent[0] as InstallSnapshot;
    assert.equal(offerMessage.snapshot.metadata.index, 60, "the image is the state as applied now");
    assert.notEqual(decodeSnapshotOffer(offerMessage.snapshot.data), null);
    assert.equal(receiver.receive(offerMessage), true);
    await waitFor("the staged snapshot", () => stepped.length === 1);
    assert.deepEqual(reports, [true]);
    // Nothing is visible before the switch-over.
    assert.equal(follower.stateMachine.get(encoder.encode("key-1")), null);
    const staged = (stepped[0] as InstallSnapshot).snapshot;
    assert.equal(staged.metadata.index, 60);
    follower.storage.transaction(() => {
      follower.storage.persist({
        hardState: { term: 2, vote: 0, commit: 60 },
        entries: [],
        snapshot: staged,
      });
      assert.equal(receiver.install(staged), true);
    });
    assert.equal(follower.stateMachine.appliedIndex(), 60);
    for (let i = 0; i < 500; i++) {
      assert.deepEqual(
        follower.store.get(encoder.encode(`key-${i}`)),
        new Uint8Array(300).fill(i % 251),
      );
    }
    assert.equal(follower.stateMachine.clusterId(), "snapshot-test");
    assert.ok(receiver.counters.received === 1);
    assert.equal(follower.storage.firstIndex(), 61);
  } finally {
    closeSide(leader);
    closeSide(follower);
  }
});
