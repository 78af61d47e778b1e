import assert from "node:assert/strict";
import { BackupService } from "../backup/backup_service.ts";
import { importTransferKey, openFrames, TransferError } from "../backup/backup_transfer.ts";
import type { InstallSnapshot, Message, Snapshot } from "../raft/types.ts";
import { KvStateMachine } from "../state_machine/kv_state_machine.ts";
import { SqliteStateStore } from "../state_machine/sqlite_state_store.ts";
import { SqliteStorage } from "../storage/sqlite_storage.ts";
import { decodeSnapshotOffer, encodeStagedReference } from "./snapshot_offer.ts";
import { SnapshotStreams } from "./snapshot_streams.ts";
import { createStaging, stagedImage } from "./snapshot_staging.ts";

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

/** Runs `fn` with a leader's and a follower's storage, removed afterwards. */
async function withSides(fn: (leader: Side, follower: Side) => Promise<void>): Promise<void> {
  const leader = openSide();
  const follower = openSide();
  try {
    await fn(leader, follower);
  } finally {
    closeSide(leader);
    closeSide(follower);
  }
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

/** The images of a node that is not a leader. */
const NO_IMAGES = {
  openImage: () => Promise.reject(new Error("not a leader")),
  imageState: () => null,
  dropImage: () => {},
};

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
  /** The first chunk of every GET the follower made. */
  const froms: number[] = [];
  const receiverOptions = {
    storage: follower.storage,
    images: NO_IMAGES,
    send: () => {},
    step: (message: Message) => stepped.push(message),
    report: () => {},
    httpUrls: () => [],
    fetchChunks: async (url: URL, key: Uint8Array, { first }: { first: number }) => {
      froms.push(first);
      const body = backups.stream(url.searchParams.get("id")!, first);
      if (body === null) throw new TransferError("no such image");
      const frames = openFrames(body, await importTransferKey(key), first);
      return (async function* () {
        let n = 0;
        try {
          for await (const chunk of frames) {
            const changed = tamper === null ? chunk : tamper(chunk, n);
            n += 1;
            if (changed === null) throw new TransferError("connection cut");
            yield changed;
          }
        } finally {
          await frames.return(undefined); // the connection closes: the leader sees a cancel
        }
      })();
    },
  };
  const receiver = new SnapshotStreams(receiverOptions);
  return {
    backups,
    sender,
    receiver,
    sent,
    stepped,
    reports,
    froms,
    setTamper: (fn: typeof tamper) => tamper = fn,
    /** A new receiver on the follower's storage: the follower restarted. */
    restartReceiver: () => new SnapshotStreams(receiverOptions),
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

Deno.test("SnapshotStreams: an image of many chunks is staged, verified, and switched over in the Ready's transaction", () =>
  withSides(async (leader, follower) => {
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
  }));

function stagingTableCount(side: Side): number {
  return (side.storage.database.prepare(
    "SELECT count(*) AS count FROM sqlite_schema WHERE name LIKE 'staging_%'",
  ).get() as { count: number }).count;
}

/** Installs the staged snapshot `stepped` in a Ready-like transaction on `follower`. */
function installStepped(follower: Side, receiver: SnapshotStreams, stepped: Message): void {
  const staged = (stepped as InstallSnapshot).snapshot;
  follower.storage.transaction(() => {
    follower.storage.persist({
      hardState: { term: 2, vote: 0, commit: staged.metadata.index },
      entries: [],
      snapshot: staged,
    });
    assert.equal(receiver.install(staged), true);
  });
}

Deno.test("SnapshotStreams: a transfer cut halfway resumes from the chunk after the last one staged", () =>
  withSides(async (leader, follower) => {
    fillLeader(leader, 400, 60);
    const streams = pair(leader, follower, { chunkBytes: 2048 });
    let cut = false;
    streams.setTamper((chunk, n) => {
      if (n !== 20 || cut) return chunk;
      cut = true;
      return null;
    });
    streams.sender.send(request);
    await waitFor("the offer", () => streams.sent.length === 1);
    streams.receiver.receive(streams.sent[0]!);
    await waitFor("the staged snapshot", () => streams.stepped.length === 1);
    assert.deepEqual(streams.froms, [1, 21], "the second GET starts after the 20 chunks staged");
    assert.deepEqual(streams.reports, [false, true], "the leader reports the break, then the end");
    assert.equal(streams.receiver.counters.receiveFailures, 0);
    installStepped(follower, streams.receiver, streams.stepped[0]!);
    assert.equal(follower.store.list(new Uint8Array(), { limit: 1000 }).length, 400);
    assert.equal(stagingTableCount(follower), 0, "the switch-over drops the staging tables");
  }));

Deno.test("SnapshotStreams: a follower restarted mid-transfer resumes when the leader offers the same image again", () =>
  withSides(async (leader, follower) => {
    fillLeader(leader, 400, 60);
    const streams = pair(leader, follower, { chunkBytes: 2048 });
    // The follower's process dies after 12 chunks: its transfer stops, its staging stays.
    streams.setTamper((chunk, n) => {
      if (n < 12) return chunk;
      streams.receiver.close();
      return null;
    });
    streams.sender.send(request);
    await waitFor("the offer", () => streams.sent.length === 1);
    streams.receiver.receive(streams.sent[0]!);
    await waitFor("the leader told of the break", () => streams.reports.length === 1);
    assert.deepEqual(stagedImage(follower.storage), {
      imageId: decodeSnapshotOffer((streams.sent[0] as InstallSnapshot).snapshot.data)!.id,
      chunks: 12,
    });
    streams.setTamper(null);
    const restarted = streams.restartReceiver();
    assert.equal(stagedImage(follower.storage)?.chunks, 12, "a restart keeps the staged chunks");
    streams.sender.send(request); // the core's retry after the break
    await waitFor("the second offer", () => streams.sent.length === 2);
    const [first, second] = streams.sent.map((message) =>
      decodeSnapshotOffer((message as InstallSnapshot).snapshot.data)!
    );
    assert.equal(second!.id, first!.id, "the leader offers the same image again");
    restarted.receive(streams.sent[1]!);
    await waitFor("the staged snapshot", () => streams.stepped.length === 1);
    assert.deepEqual(streams.froms.slice(-1), [13]);
    assert.equal(restarted.counters.resumed, 1);
    installStepped(follower, restarted, streams.stepped[0]!);
    for (let i = 0; i < 400; i++) {
      assert.deepEqual(
        follower.store.get(encoder.encode(`key-${i}`)),
        new Uint8Array(300).fill(i % 251),
      );
    }
  }));

Deno.test("SnapshotStreams: an offer of another image drops what was staged and starts from its first chunk", () =>
  withSides(async (leader, follower) => {
    fillLeader(leader, 100, 60);
    createStaging(follower.storage, "an-image-of-a-deposed-leader");
    const streams = pair(leader, follower, { chunkBytes: 2048 });
    streams.sender.send(request);
    await waitFor("the offer", () => streams.sent.length === 1);
    streams.receiver.receive(streams.sent[0]!);
    await waitFor("the staged snapshot", () => streams.stepped.length === 1);
    assert.deepEqual(streams.froms, [1]);
    assert.equal(streams.receiver.counters.resumed, 0);
  }));

Deno.test("SnapshotStreams: a changed chunk fails the image's SHA-256 and the image is never stepped", () =>
  withSides(async (leader, follower) => {
    fillLeader(leader, 100, 60);
    const streams = pair(leader, follower, { chunkBytes: 2048 });
    // A chunk replaced by another valid one (as a sender with a bug would): only the
    // whole-image checksum can tell.
    let first: Uint8Array | null = null;
    streams.setTamper((chunk, n) => {
      if (n === 0) first = chunk;
      return n === 1 ? first! : chunk;
    });
    streams.sender.send(request);
    await waitFor("the offer", () => streams.sent.length === 1);
    streams.receiver.receive(streams.sent[0]!);
    await waitFor("the transfer given up", () => streams.receiver.counters.receiveFailures === 1);
    assert.equal(streams.stepped.length, 0);
    assert.equal(stagingTableCount(follower), 0, "a refused image's chunks are dropped");
  }));

Deno.test("SnapshotStreams: a restart keeps staging it can resume and drops any other, and staged references from the network are refused", () => {
  const follower = openSide();
  try {
    const open = () =>
      new SnapshotStreams({
        storage: follower.storage,
        images: NO_IMAGES,
        send: () => {},
        step: () => assert.fail("nothing is stepped"),
        report: () => {},
        httpUrls: () => [],
      });
    createStaging(follower.storage, "image-1");
    open();
    assert.deepEqual(stagedImage(follower.storage), { imageId: "image-1", chunks: 0 });
    // Staging without the record of its image (an older build's) cannot be resumed.
    follower.storage.database.exec("DROP TABLE staging_image");
    open();
    assert.equal(stagingTableCount(follower), 0, "a new run starts without the old staging");
    const streams = open();
    const forged: InstallSnapshot = {
      ...request,
      snapshot: { ...request.snapshot, data: encodeStagedReference("forged") },
    };
    assert.equal(streams.receive(forged), true, "taken, and dropped");
    const whole: Snapshot = { ...request.snapshot, data: new Uint8Array([0x92, 1, 2]) };
    assert.equal(
      streams.receive({ ...request, snapshot: whole }),
      false,
      "a whole image goes to the core",
    );
    assert.equal(streams.install(whole), false);
  } finally {
    closeSide(follower);
  }
});
