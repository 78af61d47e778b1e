import assert from "node:assert/strict";
import type { Heartbeat, Message, NodeId } from "../raft/types.ts";
import { RAFT_ALPN } from "./alpn.ts";
import { encodeFrame } from "./frame_codec.ts";
import { StreamErrorCode } from "./framed_stream.ts";
import {
  describeIrohError,
  Endpoint,
  EndpointAddr,
  EndpointId,
  presetMinimal,
  RelayMode,
  toBindingBytes,
} from "./iroh.ts";
import { P2pEndpoint, type PeerAddress } from "./p2p_endpoint.ts";
import {
  BATCH_MESSAGES_MAX,
  dialRaft,
  PEER_QUEUE_MESSAGES_MAX,
  type RaftPeerDirectory,
  RaftTransport,
} from "./raft_transport.ts";
import { eventually, nextEvent, peerAddressOf, within } from "./testing.ts";
import { TransportError } from "./transport_error.ts";

/** Membership as the tests set it: node id → P2P id and address; `hidden` ids have no address. */
class TestDirectory implements RaftPeerDirectory {
  readonly members = new Map<NodeId, PeerAddress>();
  readonly hidden = new Set<NodeId>();

  addressOf(nodeId: NodeId): PeerAddress | null {
    if (this.hidden.has(nodeId)) return null;
    return this.members.get(nodeId) ?? null;
  }

  memberIdOf(p2pNodeId: string): NodeId | null {
    for (const [nodeId, address] of this.members) {
      if (address.p2pNodeId === p2pNodeId) return nodeId;
    }
    return null;
  }
}

/** One node of a test: its endpoint, its transport, and what the transport reported. */
interface TestNode {
  nodeId: NodeId;
  secretKey: Uint8Array;
  endpoint: P2pEndpoint;
  transport: RaftTransport;
  directory: TestDirectory;
  received: Message[];
  unreachable: NodeId[];
  /** Members that opened a connection to this node (`onPeerConnected`). */
  connected: NodeId[];
}

async function startNode(
  nodeId: NodeId,
  options: { directory?: TestDirectory; secretKey?: Uint8Array; serve?: boolean } = {},
): Promise<TestNode> {
  const secretKey = options.secretKey ?? crypto.getRandomValues(new Uint8Array(32));
  const endpoint = await P2pEndpoint.bind({
    secretKey,
    bindAddress: "127.0.0.1:0",
    relayUrl: null,
  });
  const directory = options.directory ?? new TestDirectory();
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const connected: NodeId[] = [];
  const transport = new RaftTransport({
    endpoint,
    nodeId,
    directory,
    onMessage: (message) => received.push(message),
    onUnreachable: (peer) => unreachable.push(peer),
    onPeerConnected: (peer) => connected.push(peer),
  });
  if (options.serve ?? true) transport.start();
  return { nodeId, secretKey, endpoint, transport, directory, received, unreachable, connected };
}

/** Makes each node a member in every node's directory. */
function introduce(nodes: TestNode[]): void {
  for (const node of nodes) {
    for (const other of nodes) {
      other.directory.members.set(node.nodeId, peerAddressOf(node.endpoint));
    }
  }
}

async function stopNodes(nodes: TestNode[]): Promise<void> {
  for (const node of nodes) node.transport.close();
  await Promise.all(nodes.map((node) => node.endpoint.close()));
}

function heartbeat(from: NodeId, to: NodeId, sequence: number): Heartbeat {
  return { type: "Heartbeat", term: 1, from, to, commit: sequence, readContext: 0 };
}

function sequencesOf(messages: Message[]): number[] {
  return messages.map((message) => (message as Heartbeat).commit);
}

function isStreamReset(code: number): (error: unknown) => boolean {
  return (error) =>
    error instanceof TransportError && error.code === "stream_reset" &&
    error.message.includes(`code ${code}`);
}

Deno.test("RaftTransport delivers a member's messages in order, in batches of at most BATCH_MESSAGES_MAX", async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  try {
    introduce([a, b]);
    const batchSizes: number[] = [];
    const connect = a.endpoint.connect.bind(a.endpoint);
    a.endpoint.connect = async (...args) => {
      const connection = await connect(...args);
      const openStream = connection.openStream.bind(connection);
      connection.openStream = async () => {
        const stream = await openStream();
        const sendBatch = stream.sendBatch.bind(stream);
        stream.sendBatch = (values) => {
          batchSizes.push(values.length);
          return sendBatch(values);
        };
        return stream;
      };
      return connection;
    };
    const count = BATCH_MESSAGES_MAX * 2 + 10;
    const sequences = Array.from({ length: count }, (_, i) => i + 1);
    a.transport.send(sequences.map((sequence) => heartbeat(1, 2, sequence)));
    await eventually(`${count} messages arrived`, () => b.received.length >= count);
    assert.deepStrictEqual(sequencesOf(b.received), sequences);
    assert.deepStrictEqual(batchSizes, [BATCH_MESSAGES_MAX, BATCH_MESSAGES_MAX, 10]);
    // The answer travels back the same way.
    b.transport.send([heartbeat(2, 1, 7)]);
    await eventually("the answer arrived", () => a.received.length === 1);
    assert.deepStrictEqual(a.received, [heartbeat(2, 1, 7)]);
    assert.deepStrictEqual([a.unreachable, b.unreachable], [[], []]);
  } finally {
    await stopNodes([a, b]);
  }
});

Deno.test("RaftTransport delivers what two members send each other at once, over two connections", async () => {
  // Each round both links connect at the same moment, so each node also accepts the other's
  // connection and moves its link to it. Several rounds, since the interleaving varies.
  for (let round = 0; round < 5; round++) {
    const [a, b] = [await startNode(1), await startNode(2)];
    try {
      introduce([a, b]);
      a.transport.send([heartbeat(1, 2, 1)]);
      b.transport.send([heartbeat(2, 1, 1)]);
      await eventually(
        `both messages arrived in round ${round}`,
        () => a.received.length === 1 && b.received.length === 1,
      );
      a.transport.send([heartbeat(1, 2, 2)]);
      b.transport.send([heartbeat(2, 1, 2)]);
      await eventually(
        `the next messages arrived in round ${round}`,
        () => a.received.length === 2 && b.received.length === 2,
      );
      assert.deepStrictEqual([sequencesOf(a.received), sequencesOf(b.received)], [[1, 2], [1, 2]]);
    } finally {
      await stopNodes([a, b]);
    }
  }
});

Deno.test("RaftTransport closes a connection from a key that is not a member and delivers none of its messages", async () => {
  const a = await startNode(1);
  const outsider = await startNode(2);
  try {
    // The outsider believes it is member 2; node 1 does not know its key.
    outsider.directory.members.set(1, peerAddressOf(a.endpoint));
    a.directory.members.set(1, peerAddressOf(a.endpoint));
    const connection = await outsider.endpoint.connect(peerAddressOf(a.endpoint), RAFT_ALPN, {
      timeoutMs: 5_000,
    });
    // Node 1 may refuse the connection before the stream opens (seen on a loaded machine):
    // either way the connection must end closed as "not a member".
    await connection.openStream()
      .then((stream) => stream.send(heartbeat(2, 1, 1)))
      .catch(() => {});
    await within("the refusal", connection.closed);
    assert.match(connection.closeReason ?? "", /not a member/);
    // Through the transport too: its connection is refused and its message not delivered.
    const refused = nextEvent(outsider.endpoint, (event) => event.type === "connection_closed");
    outsider.transport.send([heartbeat(2, 1, 2)]);
    const event = await within("the second refusal", refused);
    assert.ok(event.type === "connection_closed" && /not a member/.test(event.reason));
    assert.deepStrictEqual(a.received, []);
  } finally {
    await stopNodes([a, outsider]);
  }
});

Deno.test("RaftTransport resets a stream whose message is not from the sender's member id or not to this node", async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  try {
    introduce([a, b]);
    const connection = await b.endpoint.connect(peerAddressOf(a.endpoint), RAFT_ALPN, {
      timeoutMs: 5_000,
    });
    for (const forged of [heartbeat(3, 1, 1), heartbeat(2, 3, 2)]) {
      const stream = await connection.openStream();
      await stream.send(forged);
      await assert.rejects(
        within("the reset", stream.receive()),
        isStreamReset(StreamErrorCode.protocolViolation),
      );
    }
    // The connection stays: a well-formed message on a new stream is delivered.
    const stream = await connection.openStream();
    await stream.send(heartbeat(2, 1, 3));
    await eventually("the valid message arrived", () => a.received.length === 1);
    assert.deepStrictEqual(sequencesOf(a.received), [3]);
    assert.equal(connection.isClosed, false);
  } finally {
    await stopNodes([a, b]);
  }
});

/** A bare Iroh endpoint, for writing bytes that `FramedStream` would never produce. */
async function bindRawEndpoint(secretKey: Uint8Array) {
  const builder = Endpoint.builder();
  presetMinimal(builder);
  builder.secretKey(Array.from(secretKey));
  builder.alpns([]);
  builder.relayMode(RelayMode.disabled());
  builder.bindAddr("127.0.0.1:0");
  return await builder.bind();
}

Deno.test("RaftTransport resets only the stream of a malformed frame or an invalid message", async () => {
  const a = await startNode(1);
  const secretKey = crypto.getRandomValues(new Uint8Array(32));
  const raw = await bindRawEndpoint(secretKey);
  try {
    a.directory.members.set(2, {
      p2pNodeId: raw.id().toString(),
      addresses: raw.boundSockets(),
      relayUrl: null,
    });
    const address = peerAddressOf(a.endpoint);
    const connection = await raw.connect(
      new EndpointAddr(EndpointId.fromString(address.p2pNodeId), null, address.addresses),
      Array.from(new TextEncoder().encode(RAFT_ALPN)),
    );
    const cases: [Uint8Array, number][] = [
      // A length prefix of 5, then bytes msgpack never uses (0xc1).
      [new Uint8Array([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]), StreamErrorCode.malformedFrame],
      // A well-formed frame whose value is no Raft message.
      [encodeFrame({ type: "Gossip", from: 2, to: 1 }), StreamErrorCode.protocolViolation],
    ];
    for (const [bytes, code] of cases) {
      const stream = await connection.openBi();
      await stream.send.writeAll(toBindingBytes(bytes));
      const reset = await within("the reset", stream.recv.read(1024)).then(
        () => "no reset",
        (error) => describeIrohError(error),
      );
      assert.equal(reset, `Reset(${code})`);
    }
    const stream = await connection.openBi();
    await stream.send.writeAll(toBindingBytes(encodeFrame(heartbeat(2, 1, 9))));
    await eventually("the valid message arrived", () => a.received.length === 1);
    assert.deepStrictEqual(sequencesOf(a.received), [9]);
    assert.equal(connection.closeReason(), null);
  } finally {
    a.transport.close();
    await raw.close();
    await a.endpoint.close();
  }
});

Deno.test("RaftTransport.refreshMembers() closes the connections of a key that is no longer a member", async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  try {
    introduce([a, b]);
    b.transport.send([heartbeat(2, 1, 1)]);
    a.transport.send([heartbeat(1, 2, 1)]);
    await eventually("both messages arrived", () => a.received.length + b.received.length === 2);
    const closed = nextEvent(b.endpoint, (event) => event.type === "connection_closed");
    a.directory.members.delete(2);
    a.transport.refreshMembers();
    const event = await within("the closed connection", closed);
    assert.ok(event.type === "connection_closed" && /not a member/.test(event.reason), event.type);
    // Node 2 reconnects on its next send and is refused: nothing more reaches node 1.
    b.transport.send([heartbeat(2, 1, 2)]);
    await within(
      "the refusal",
      nextEvent(b.endpoint, (event) => event.type === "connection_closed"),
    );
    assert.deepStrictEqual(sequencesOf(a.received), [1]);
  } finally {
    await stopNodes([a, b]);
  }
});

Deno.test("RaftTransport answers a member whose address it does not know over the connection that member opened", async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  try {
    introduce([a, b]);
    a.directory.hidden.add(2);
    a.transport.send([heartbeat(1, 2, 1)]);
    assert.deepStrictEqual(a.unreachable, [], "reported asynchronously, after the connect fails");
    await eventually("node 1 gave up on node 2", () => a.unreachable.length === 1);
    b.transport.send([heartbeat(2, 1, 2)]);
    await eventually("node 2's message arrived", () => a.received.length === 1);
    await eventually("node 1's answer arrived", () => b.received.length > 0, {
      every: () => a.transport.send([heartbeat(1, 2, 3)]),
    });
    assert.deepStrictEqual(new Set(sequencesOf(b.received)), new Set([3]));
  } finally {
    await stopNodes([a, b]);
  }
});

Deno.test("RaftTransport tells of each connection a member opens (a greeting), and of none a stranger opens", async () => {
  const [a, b, outsider] = [await startNode(1), await startNode(2), await startNode(3)];
  try {
    introduce([a, b]);
    outsider.directory.members.set(1, peerAddressOf(a.endpoint));
    b.transport.greet(1);
    await eventually("node 1 heard of node 2's connection", () => a.connected.length === 1);
    assert.deepStrictEqual(a.connected, [2]);
    const refused = nextEvent(outsider.endpoint, (event) => event.type === "connection_closed");
    outsider.transport.greet(1);
    await within("the stranger's refusal", refused);
    assert.deepStrictEqual(a.connected, [2]);
    assert.deepStrictEqual(b.connected, [], "the side that opened it is not told");
  } finally {
    await stopNodes([a, b, outsider]);
  }
});

Deno.test("RaftTransport.adopt() sends and receives over a connection dialled before the transport started; another key's is closed", async () => {
  const a = await startNode(1);
  const b = await startNode(2, { serve: false });
  const outsider = await startNode(3);
  try {
    introduce([a, b]);
    const dialled = await dialRaft(b.endpoint, peerAddressOf(a.endpoint));
    await eventually("node 1 heard of node 2's connection", () => a.connected.length === 1);
    // Node 1 answers on it at once, before node 2's transport reads anything.
    a.transport.send([heartbeat(1, 2, 1)]);
    b.transport.start();
    b.transport.adopt(1, dialled);
    await eventually("node 1's message arrived", () => b.received.length === 1);
    b.transport.send([heartbeat(2, 1, 2)]);
    await eventually("node 2's message arrived", () => a.received.length === 1);
    assert.equal(a.connected.length, 1, "node 2 opened no second connection");

    // The outsider accepts node 2: the close comes from adopt().
    outsider.directory.members.set(2, peerAddressOf(b.endpoint));
    const stranger = await dialRaft(b.endpoint, peerAddressOf(outsider.endpoint));
    b.transport.adopt(1, stranger);
    await within("the stranger's connection closed", stranger.closed);
  } finally {
    await stopNodes([a, b, outsider]);
  }
});

Deno.test("RaftTransport drops and reports a peer's queue when it reaches PEER_QUEUE_MESSAGES_MAX", async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  try {
    introduce([a, b]);
    // One synchronous send: the link is still connecting, so everything waits in its queue.
    const overflow = Array.from(
      { length: PEER_QUEUE_MESSAGES_MAX + 1 },
      (_, i) => heartbeat(1, 2, i + 1),
    );
    a.transport.send(overflow);
    assert.deepStrictEqual(a.unreachable, [2]);
    const last = PEER_QUEUE_MESSAGES_MAX + 2;
    a.transport.send([heartbeat(1, 2, last)]);
    await eventually(
      "the message after the overflow arrived",
      () => b.received.some((message) => (message as Heartbeat).commit === last),
    );
    const delivered = sequencesOf(b.received);
    assert.ok(
      delivered.every((sequence) => sequence > PEER_QUEUE_MESSAGES_MAX),
      `the full queue was dropped, yet ${delivered.length} messages arrived`,
    );
  } finally {
    await stopNodes([a, b]);
  }
});

Deno.test("RaftTransport reports a peer that went down and delivers again once it is back", async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  let restarted: TestNode | null = null;
  try {
    introduce([a, b]);
    a.transport.send([heartbeat(1, 2, 1)]);
    await eventually("the first message arrived", () => b.received.length === 1);
    const lost = nextEvent(a.endpoint, (event) => event.type === "connection_closed");
    await stopNodes([b]);
    await within("the closed connection", lost);
    a.transport.send([heartbeat(1, 2, 2)]);
    await eventually("node 1 reported node 2 unreachable", () => a.unreachable.includes(2));
    // Node 2 comes back with the same key at a new address, as after a restart.
    restarted = await startNode(2, { secretKey: b.secretKey, directory: b.directory });
    a.directory.members.set(2, peerAddressOf(restarted.endpoint));
    let sequence = 100;
    await eventually("a message reached the restarted node", () => restarted!.received.length > 0, {
      every: () => a.transport.send([heartbeat(1, 2, sequence++)]),
    });
    assert.ok(sequencesOf(restarted.received).every((received) => received >= 100));
  } finally {
    await stopNodes(restarted === null ? [a] : [a, restarted]);
  }
});

Deno.test("RaftTransport keeps reconnecting while messages keep coming: a peer that serves Raft again is reached", async () => {
  const a = await startNode(1);
  // Node 2's endpoint is up but does not serve Raft yet (a node between binding and starting
  // its transport): every connect fails at once and the link backs off.
  const b = await startNode(2, { serve: false });
  try {
    introduce([a, b]);
    let sequence = 1;
    const sendOne = () => a.transport.send([heartbeat(1, 2, sequence++)]);
    await eventually("node 1 failed ten times", () => a.unreachable.length >= 10, {
      every: sendOne,
    });
    b.transport.start();
    await eventually("a message reached node 2", () => b.received.length > 0, {
      every: sendOne,
      timeoutMs: 5_000,
    });
  } finally {
    await stopNodes([a, b]);
  }
});

Deno.test("RaftTransport sends over the newest connection a member opened, while the old one still looks open", async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  let fresh: Awaited<ReturnType<P2pEndpoint["connect"]>> | null = null;
  try {
    introduce([a, b]);
    a.transport.send([heartbeat(1, 2, 1)]);
    await eventually("the first message arrived", () => b.received.length === 1);
    // Node 2 opens a second connection while the first stays open: what node 1 sees when
    // node 2 restarts after kill -9, whose old connection nothing closes until QUIC's idle
    // timeout. (A second live endpoint with node 2's key would stand in for the restarted
    // process less faithfully: two live endpoints with one key crash the Iroh binding.)
    fresh = await b.endpoint.connect(peerAddressOf(a.endpoint), RAFT_ALPN, { timeoutMs: 5_000 });
    const accepted = fresh.acceptStream();
    let sequence = 100;
    const stream = await within(
      "a stream from node 1 on the new connection",
      (async () => {
        const timer = setInterval(() => a.transport.send([heartbeat(1, 2, sequence++)]), 20);
        try {
          return await accepted;
        } finally {
          clearInterval(timer);
        }
      })(),
    );
    assert.ok(stream !== null);
    const message = await stream.receive() as Heartbeat;
    assert.equal(message.from, 1);
    assert.ok(message.commit >= 100, `heartbeat ${message.commit} came after the new connection`);
  } finally {
    fresh?.close("test done");
    await stopNodes([a, b]);
  }
});
