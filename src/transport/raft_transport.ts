/**
 * Raft messages between members over `blixard/raft/1` (DESIGN.md section 5).
 *
 * - One link per peer: a connection (whichever side opened it) and one long-lived stream
 *   this node writes on. Messages queued while a write is in flight go out together in the
 *   next single write, so a busy leader batches naturally.
 * - Every queue is bounded. When a peer's queue is full, or its connection fails, the
 *   queued messages are dropped and the core is told the peer is unreachable: Raft
 *   retransmits what matters, and the core backs off to probing.
 * - Only members may speak Raft: an incoming connection whose authenticated key is not a
 *   member's is closed at once, and a message whose `from` is not the id that key belongs
 *   to, or whose `to` is not this node, ends the stream.
 * - A connection a peer opened to us is used to send back to it too, and the newest
 *   connection wins: a restarted peer is reached over the connection it opens, even when the
 *   one to its previous run still looks open (kill -9 sends no close) or its address
 *   changed and the new one is not replicated yet.
 *
 * @module
 */

import type { Message, NodeId } from "../raft/types.ts";
import { getLogger } from "../log/logging.ts";
import { backoffMs } from "../util/backoff.ts";
import { RAFT_ALPN } from "./alpn.ts";
import type { FramedStream } from "./framed_stream.ts";
import { StreamErrorCode } from "./framed_stream.ts";
import { ConnectionCloseCode, type ConnectionPath, type P2pConnection } from "./p2p_connection.ts";
import type { P2pEndpoint, PeerAddress } from "./p2p_endpoint.ts";
import { parseRaftMessage, RaftMessageError } from "./raft_message_schema.ts";
import { LogRateLimiter } from "../log/log_rate_limiter.ts";

const log = getLogger(["blixard", "raft_transport"]);

/** Messages waiting for one peer; beyond this they are dropped (Raft retransmits). */
export const PEER_QUEUE_MESSAGES_MAX = 4096;
/** Messages in one write: bounds the size of a batch. */
export const BATCH_MESSAGES_MAX = 512;
/** Deadline of one connection attempt to a peer. */
export const CONNECT_TIMEOUT_MS = 2_000;
/** First pause after a failed connection attempt; doubled per failure up to the maximum. */
export const RECONNECT_BACKOFF_MIN_MS = 10;
/** Longest pause between connection attempts to a peer. */
export const RECONNECT_BACKOFF_MAX_MS = 1_000;
/**
 * Warnings about refused strangers' Raft connections: anyone can cause one per connection,
 * so a few in a burst, then one per 10 s, each naming how many were suppressed before it.
 */
export const REFUSED_CONNECTION_LOG_LIMIT = { burst: 5, perSecond: 0.1 };
/** Largest Raft frame: a whole snapshot travels in one. */
export const RAFT_FRAME_BYTES_MAX = 64 * 1024 * 1024;

/** Who may speak Raft to this node and where the members are. */
export interface RaftPeerDirectory {
  /** How to reach member `nodeId`, or `null` when it is not known. */
  addressOf(nodeId: NodeId): PeerAddress | null;
  /** The member id of the P2P key `p2pNodeId`, or `null` when it is not a member. */
  memberIdOf(p2pNodeId: string): NodeId | null;
}

/** Options of a {@linkcode RaftTransport}. */
export interface RaftTransportOptions {
  endpoint: P2pEndpoint;
  /** This node's Raft id. */
  nodeId: NodeId;
  directory: RaftPeerDirectory;
  /** Receives each valid message from a member. */
  onMessage: (message: Message) => void;
  /** Told when messages to a peer were dropped. */
  onUnreachable: (nodeId: NodeId) => void;
  /**
   * Told when a member opened a new connection to this node (it restarted, or a new learner
   * greets its leader): messages the link dropped meanwhile can be sent again now.
   */
  onPeerConnected?: (nodeId: NodeId) => void;
  /** Told of each log line about a refused connection that was suppressed (a metric). */
  onLogLineSuppressed?: () => void;
}

/** Sends and receives Raft messages for one node. */
export class RaftTransport {
  readonly #options: RaftTransportOptions;
  readonly #links = new Map<NodeId, PeerLink>();
  /** Every open connection on the Raft ALPN, both directions, by the member id of its key. */
  readonly #connections = new Map<NodeId, Set<P2pConnection>>();
  readonly #refusedLog: LogRateLimiter;
  #closed = false;

  /** A transport for `options.nodeId`; call `start()` to accept connections. */
  constructor(options: RaftTransportOptions) {
    this.#options = options;
    this.#refusedLog = new LogRateLimiter({
      limit: REFUSED_CONNECTION_LOG_LIMIT,
      ...(options.onLogLineSuppressed === undefined
        ? {}
        : { onSuppressed: options.onLogLineSuppressed }),
    });
  }

  /** Accepts members' connections on `blixard/raft/1`. */
  start(): void {
    this.#options.endpoint.handle(RAFT_ALPN, (connection) => this.#accept(connection), {
      frameBytesMax: RAFT_FRAME_BYTES_MAX,
    });
  }

  /** Queues `messages` for their recipients; never blocks, never throws for a peer's fault. */
  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    for (const message of messages) this.#link(message.to).enqueue(message);
  }

  /**
   * Re-checks every connection against the directory, closing those whose key is no
   * longer a member's: a removed node's key is refused at once, not at its next connect.
   */
  refreshMembers(): void {
    for (const [nodeId, connections] of this.#connections) {
      for (const connection of connections) {
        if (this.#options.directory.memberIdOf(connection.remoteNodeId) === nodeId) continue;
        connection.close("not a member of this cluster", ConnectionCloseCode.refused);
      }
    }
    for (const [nodeId, link] of this.#links) {
      if (this.#options.directory.addressOf(nodeId) === null) {
        link.close();
        this.#links.delete(nodeId);
      }
    }
  }

  /**
   * Opens a connection to member `nodeId` now, sending nothing. A learner that joined again
   * after a kill -9 calls it for its leader: a learner sends nothing on its own, and the
   * leader's old connection to the dead process swallows every message until QUIC's idle
   * timeout; a connection from the peer moves the leader to it at once (`#accept`).
   */
  greet(nodeId: NodeId): void {
    if (this.#closed) return;
    this.#connect(nodeId).catch((error) => {
      log.debug("cannot greet node {nodeId}: {error}", { nodeId, error });
    });
  }

  /**
   * Takes a Raft connection to member `nodeId` that this node opened before the transport
   * started (`dialRaft`): a ticket joiner dials its leader while it opens its storage and
   * HTTP server, so the handshake is done when its Raft starts, and the leader, told of the
   * connection, has sent its first messages on it already. A connection whose key is not
   * that member's is closed.
   */
  adopt(nodeId: NodeId, connection: P2pConnection): void {
    if (this.#closed || this.#options.directory.memberIdOf(connection.remoteNodeId) !== nodeId) {
      connection.close("not a member of this cluster", ConnectionCloseCode.refused);
      return;
    }
    this.#track(nodeId, connection);
    this.#links.get(nodeId)?.moveToNewestConnection();
  }

  /**
   * The path to member `nodeId` and its round-trip time, from the newest open Raft
   * connection either side opened; `null` when there is none.
   */
  pathTo(nodeId: NodeId): { path: ConnectionPath; rttMs: number | null } | null {
    const open = [...this.#connections.get(nodeId) ?? []].findLast((connection) =>
      !connection.isClosed
    );
    return open?.pathInfo() ?? null;
  }

  /** Closes every link and connection. */
  close(): void {
    this.#closed = true;
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    for (const connections of this.#connections.values()) {
      for (const connection of connections) {
        connection.close("node stopping", ConnectionCloseCode.shutdown);
      }
    }
  }

  #link(nodeId: NodeId): PeerLink {
    let link = this.#links.get(nodeId);
    if (link === undefined) {
      link = new PeerLink(nodeId, {
        connect: () => this.#connect(nodeId),
        onUnreachable: () => this.#options.onUnreachable(nodeId),
      });
      this.#links.set(nodeId, link);
    }
    return link;
  }

  /** An open connection to `nodeId`: the newest one either side opened, else a new one. */
  async #connect(nodeId: NodeId): Promise<P2pConnection> {
    const existing = [...this.#connections.get(nodeId) ?? []].findLast((connection) =>
      !connection.isClosed
    );
    if (existing !== undefined) return existing;
    const address = this.#options.directory.addressOf(nodeId);
    if (address === null) throw new Error(`node ${nodeId} is not a known member`);
    const connection = await dialRaft(this.#options.endpoint, address);
    if (this.#closed) {
      connection.close("node stopping", ConnectionCloseCode.shutdown);
      throw new Error("transport closed");
    }
    this.#track(nodeId, connection);
    return connection;
  }

  #accept(connection: P2pConnection): void {
    const nodeId = this.#options.directory.memberIdOf(connection.remoteNodeId);
    if (nodeId === null || this.#closed) {
      this.#refusedLog.write((suppressed) =>
        log.warn(
          "refused a Raft connection from {p2pNodeId}: not a member of this cluster " +
            "({suppressed} similar lines suppressed before this one)",
          { p2pNodeId: connection.remoteNodeId, suppressed },
        )
      );
      connection.close("not a member of this cluster", ConnectionCloseCode.refused);
      return;
    }
    this.#track(nodeId, connection);
    // A peer opens a connection when it has none to us: typically it restarted. Our old
    // connection to a peer killed with kill -9 looks open until QUIC's idle timeout (about
    // 30 s) and swallows everything we send, so move to the new one at once.
    this.#links.get(nodeId)?.moveToNewestConnection();
    this.#options.onPeerConnected?.(nodeId);
  }

  /** Remembers `connection` of member `nodeId` and reads every stream the peer opens on it. */
  #track(nodeId: NodeId, connection: P2pConnection): void {
    let connections = this.#connections.get(nodeId);
    if (connections === undefined) {
      connections = new Set();
      this.#connections.set(nodeId, connections);
    }
    connections.add(connection);
    connection.closed.then(() => connections.delete(connection));
    this.#acceptStreams(nodeId, connection).catch((error) => {
      log.warn("Raft connection with node {nodeId} failed: {error}", { nodeId, error });
    });
  }

  async #acceptStreams(nodeId: NodeId, connection: P2pConnection): Promise<void> {
    for (;;) {
      const stream = await connection.acceptStream();
      if (stream === null) return;
      this.#receive(nodeId, stream).catch((error) => {
        log.debug("Raft stream from node {nodeId} ended: {error}", { nodeId, error });
      });
    }
  }

  async #receive(nodeId: NodeId, stream: FramedStream): Promise<void> {
    for (;;) {
      const value = await stream.receive();
      if (value === null || this.#closed) return;
      let message: Message;
      try {
        message = parseRaftMessage(value);
      } catch (error) {
        if (!(error instanceof RaftMessageError)) throw error;
        log.warn("node {nodeId} sent a malformed Raft message: {detail}; stream reset", {
          nodeId,
          detail: error.message,
        });
        stream.reset(StreamErrorCode.protocolViolation);
        return;
      }
      if (message.from !== nodeId || message.to !== this.#options.nodeId) {
        log.warn("node {nodeId} sent a Raft message from {from} to {to}; stream reset", {
          nodeId,
          from: message.from,
          to: message.to,
        });
        stream.reset(StreamErrorCode.protocolViolation);
        return;
      }
      this.#options.onMessage(message);
    }
  }
}

/** Opens a Raft connection to `address`, as the transport does for itself. */
export function dialRaft(endpoint: P2pEndpoint, address: PeerAddress): Promise<P2pConnection> {
  return endpoint.connect(address, RAFT_ALPN, {
    timeoutMs: CONNECT_TIMEOUT_MS,
    frameBytesMax: RAFT_FRAME_BYTES_MAX,
  });
}

/** The outgoing half of the conversation with one peer. */
class PeerLink {
  readonly #nodeId: NodeId;
  readonly #connect: () => Promise<P2pConnection>;
  readonly #onUnreachable: () => void;
  #queue: Message[] = [];
  #flushing = false;
  /** Stops waiting for the write in flight, if any. */
  #abandonWrite: (() => void) | null = null;
  #stream: FramedStream | null = null;
  #connection: P2pConnection | null = null;
  #failures = 0;
  #retryAtMs = 0;
  #closed = false;

  constructor(
    nodeId: NodeId,
    hooks: { connect: () => Promise<P2pConnection>; onUnreachable: () => void },
  ) {
    this.#nodeId = nodeId;
    this.#connect = hooks.connect;
    this.#onUnreachable = hooks.onUnreachable;
  }

  enqueue(message: Message): void {
    if (this.#closed) return;
    if (this.#queue.length >= PEER_QUEUE_MESSAGES_MAX) {
      this.#dropQueue();
      return;
    }
    this.#queue.push(message);
    if (!this.#flushing) void this.#flush();
  }

  /**
   * Leaves the current stream; the next send opens one on the newest connection. The stream
   * is finished, never reset, so that what was written on it still arrives: when both sides
   * connect at once, a reset here discarded the first messages unread and unreported. A
   * write still in flight is no longer waited for (see `#write`).
   */
  moveToNewestConnection(): void {
    this.#stream?.finish().catch(() => {});
    this.#stream = null;
    this.#connection = null;
    this.#failures = 0;
    this.#retryAtMs = 0;
    this.#abandonWrite?.();
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#stream?.reset(StreamErrorCode.cancelled);
    this.#stream = null;
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        // The stream in hand is used without an await, so the write starts now, even inside
        // the caller's synchronous work (a leader replicating while it fsyncs).
        const stream = this.#usableStream() ?? await this.#openStream();
        const batch = this.#queue.splice(0, BATCH_MESSAGES_MAX);
        if (await this.#write(stream, batch) === "abandoned") this.#onUnreachable();
        else this.#failures = 0;
      }
    } catch (error) {
      this.#failed(error);
    } finally {
      this.#flushing = false;
    }
  }

  /**
   * Writes `batch`, unless the link moves to a newer connection first: the old one may lead
   * to a process that died (kill -9), where a write can block until QUIC's idle timeout.
   * An abandoned batch may still arrive; it is reported unreachable, and Raft retransmits.
   */
  #write(stream: FramedStream, batch: Message[]): Promise<"written" | "abandoned"> {
    const abandoned = Promise.withResolvers<"abandoned">();
    this.#abandonWrite = () => abandoned.resolve("abandoned");
    const written = stream.sendBatch(batch).then(() => "written" as const);
    return Promise.race([written, abandoned.promise]).finally(() => {
      this.#abandonWrite = null;
    });
  }

  #usableStream(): FramedStream | null {
    if (this.#stream !== null && this.#connection !== null && !this.#connection.isClosed) {
      return this.#stream;
    }
    return null;
  }

  async #openStream(): Promise<FramedStream> {
    const usable = this.#usableStream();
    if (usable !== null) return usable;
    this.#stream = null;
    if (performance.now() < this.#retryAtMs) throw new BackingOff();
    this.#connection = await this.#connect();
    this.#stream = await this.#connection.openStream();
    return this.#stream;
  }

  #failed(error: unknown): void {
    // Messages sent while the link backs off are dropped, but they are no new failure:
    // counting them would push the next attempt out again on every heartbeat, and a peer
    // that came back would never be tried again.
    if (!(error instanceof BackingOff)) this.#backOff(error);
    this.#stream?.reset(StreamErrorCode.cancelled);
    this.#stream = null;
    this.#dropQueue();
  }

  #backOff(error: unknown): void {
    this.#failures++;
    const pauseMs = backoffMs(this.#failures - 1, {
      initialMs: RECONNECT_BACKOFF_MIN_MS,
      maxMs: RECONNECT_BACKOFF_MAX_MS,
    });
    this.#retryAtMs = performance.now() + pauseMs;
    if (this.#failures === 1 || this.#failures % 20 === 0) {
      log.debug(
        "node {nodeId} unreachable ({failures} failures, retry in {backoffMs} ms): {error}",
        {
          nodeId: this.#nodeId,
          failures: this.#failures,
          backoffMs: pauseMs,
          error,
        },
      );
    }
  }

  #dropQueue(): void {
    this.#queue = [];
    this.#onUnreachable();
  }
}

/** A send while the link waits out its backoff after a failed connection. */
class BackingOff extends Error {
  override name = "BackingOff";

  constructor() {
    super("backing off after a failed connection");
  }
}
