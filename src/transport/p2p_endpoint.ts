/**
 * The node's Iroh endpoint: one UDP socket, one identity (the secret key), and connections
 * routed by protocol (ALPN). Relays are off unless a relay URL is given (DESIGN.md
 * section 3), so by default the endpoint talks only to the addresses it is told.
 *
 * Outgoing: `connect()` with a deadline of its own (a native connect to an unreachable
 * address gives up only after about 30 s) and a check that the peer's authenticated key
 * is the P2P id that was dialled. Incoming: connections for protocols nobody `handle()`s
 * are refused in the TLS handshake; the rest are counted against a limit and handed to the
 * protocol's handler. A failed handshake is logged at debug level and counted, never
 * thrown: it is the remote side's problem. A connection that arrived on an address outside
 * the bind address (Iroh's socket of the other IP family) is dropped unanswered and
 * counted, so that the node listens only where it was told (`bind_scope.ts`). Strangers
 * (keys that `isTrusted` does not vouch for) are held to the connection caps of
 * `stranger_limits.ts`: per source address before the handshake, per key after it, and in
 * total, so that the rest is reserved for members and authenticated keys.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { assert } from "../util/assert.ts";
import { alpnBytes, alpnText } from "./alpn.ts";
import { assertTimeoutMs, withDeadline } from "./deadline.ts";
import { FRAME_BYTES_MAX_DEFAULT } from "./frame_codec.ts";
import {
  describeIrohError,
  Endpoint,
  EndpointAddr,
  EndpointId,
  type IrohConnection,
  type IrohEndpoint,
  type IrohIncoming,
  isValidEndpointId,
  presetMinimal,
  RelayMode,
} from "./iroh.ts";
import { ConnectionCloseCode, type ConnectionDirection, P2pConnection } from "./p2p_connection.ts";
import {
  companionBindAddress,
  coversBothFamilies,
  defaultAdvertisedAddresses,
  isInBindScope,
} from "./bind_scope.ts";
import {
  formatSocketAddress,
  isDialableAddress,
  parseIpAddress,
  parseSocketAddress,
  type SocketAddress,
  sourceOfAddress,
} from "./socket_address.ts";
import {
  STRANGER_LIMITS_DEFAULT,
  type StrangerLimits,
  type TrustCheck,
} from "./stranger_limits.ts";
import { holdWhileClosing, NativeCalls, releaseClose } from "./native_calls.ts";
import { TransportError, type TransportErrorCode } from "./transport_error.ts";

const logger = getLogger(["blixard", "transport"]);

/** What a stranger refused by a cap is told when its connection is closed. */
const STRANGER_REFUSAL_BYTES = new TextEncoder().encode(
  "too many connections from this address or key: prove the cluster secret first",
);

/**
 * How long `close()` waits, after Iroh has closed the endpoint, for calls into the binding
 * to settle. Closing ends every pending read, accept and connect, so they settle in
 * milliseconds; the bound only keeps a binding bug from hanging a node's shutdown.
 */
const NATIVE_CALLS_SETTLE_WAIT_MS = 10_000;

/** Default bound on incoming connections that are open or in their handshake. */
export const INCOMING_CONNECTIONS_MAX_DEFAULT = 256;

/** Most addresses accepted for one peer: more is a misconfiguration or an attack. */
export const PEER_ADDRESSES_MAX = 16;

/** Bytes in an Iroh secret key. */
export const SECRET_KEY_BYTES = 32;

/** How to reach a peer: its P2P id and where it may be found. */
export interface PeerAddress {
  /** The peer's Iroh endpoint id (64 lowercase hex characters). */
  p2pNodeId: string;
  /** Direct `ip:port` addresses. */
  addresses: string[];
  /** The peer's home relay, or `null`. */
  relayUrl: string | null;
}

/** Options of {@linkcode P2pEndpoint.bind}. */
export interface P2pEndpointOptions {
  /** The 32-byte Iroh secret key: the node's P2P identity. */
  secretKey: Uint8Array;
  /** UDP `ip:port` to bind (port 0: any free port); `0.0.0.0` or `[::]` for every interface. */
  bindAddress: string;
  /**
   * The `ip:port` addresses peers are told (`--advertise`), e.g. behind NAT. Default: the
   * bound address; for a wildcard bind, the addresses of the interfaces it covers.
   */
  advertiseAddresses?: readonly string[];
  /** A self-hosted iroh relay, or `null` for relays off. */
  relayUrl: string | null;
  /** Bound on incoming connections open or in their handshake (default 256). */
  incomingConnectionsMax?: number;
  /**
   * Whether a key is a member's or authenticated; others are strangers, held to
   * `strangerLimits`. Default: everyone is trusted (a node without a cluster secret).
   */
  isTrusted?: TrustCheck;
  /** Bounds on strangers other than the defaults (tests). */
  strangerLimits?: Partial<StrangerLimits>;
  /** Where its binding calls are tracked, when not its own (tests watch them this way). */
  nativeCalls?: NativeCalls;
}

/** Options of {@linkcode P2pEndpoint.connect}. */
export interface ConnectOptions {
  /** Deadline for the whole handshake. */
  timeoutMs: number;
  /** Gives up at once when aborted. */
  signal?: AbortSignal;
  /** Largest frame payload on the connection's streams (default 16 MiB). */
  frameBytesMax?: number;
}

/** Options of {@linkcode P2pEndpoint.handle}. */
export interface HandleOptions {
  /** Largest frame payload on the protocol's streams (default 16 MiB). */
  frameBytesMax?: number;
}

/** Receives each accepted connection of one protocol; it owns the connection from then on. */
export type ConnectionHandler = (connection: P2pConnection) => void | Promise<void>;

/** Why a connection could not be made or was refused. */
export type ConnectionFailureReason =
  | TransportErrorCode
  /** An incoming handshake failed (TLS, ALPN, or the peer went away). */
  | "handshake_failed"
  /** An incoming connection was refused: too many are open. */
  | "over_limit"
  /** An incoming connection arrived on an address outside the bind address; dropped. */
  | "outside_bind"
  /** A stranger's incoming connection was refused: its source or key holds too many. */
  | "stranger_limit";

/** What the endpoint reports for metrics. */
export type P2pEvent =
  | {
    type: "connection_opened";
    direction: ConnectionDirection;
    alpn: string;
    remoteNodeId: string;
  }
  | {
    type: "connection_closed";
    direction: ConnectionDirection;
    alpn: string;
    remoteNodeId: string;
    reason: string;
  }
  | {
    type: "connection_failed";
    direction: ConnectionDirection;
    /** `null` when the handshake failed before the protocol was known. */
    alpn: string | null;
    reason: ConnectionFailureReason;
  };

/** Counters of the endpoint since it was bound. */
export interface P2pEndpointCounters {
  /** Incoming connections open or in their handshake. */
  incomingOpen: number;
  /** Outgoing connections open. */
  outgoingOpen: number;
  /** Incoming handshakes that failed. */
  handshakeFailures: number;
  /** Incoming connections refused because `incomingConnectionsMax` were open. */
  incomingRefused: number;
  /** Incoming connections dropped because they arrived outside the bind address. */
  incomingOutsideBind: number;
  /** Strangers' incoming connections refused by the caps of `stranger_limits.ts`. */
  strangersRefused: number;
}

/** An incoming connection, from its handshake on: where it came from and, once known, whose. */
interface IncomingEntry {
  /** `sourceOfAddress` of its address, or `null` when relayed. */
  source: string | null;
  /** The peer's key once the handshake is done. */
  remoteNodeId: string | null;
}

interface Route {
  handler: ConnectionHandler;
  frameBytesMax: number;
}

/** The node's Iroh endpoint. Create it with {@linkcode P2pEndpoint.bind}. */
export class P2pEndpoint {
  /** This node's P2P id: its Iroh endpoint id, 64 lowercase hex characters. */
  readonly nodeId: string;
  /** The relay this endpoint uses, or `null` when relays are off. */
  readonly relayUrl: string | null;
  readonly #native: IrohEndpoint;
  readonly #incomingMax: number;
  readonly #isTrusted: TrustCheck;
  readonly #strangerLimits: StrangerLimits;
  /** Every incoming connection open or in its handshake. */
  readonly #incoming = new Set<IncomingEntry>();
  readonly #routes = new Map<string, Route>();
  readonly #listeners = new Set<(event: P2pEvent) => void>();
  readonly #counters: P2pEndpointCounters = {
    incomingOpen: 0,
    outgoingOpen: 0,
    handshakeFailures: 0,
    incomingRefused: 0,
    incomingOutsideBind: 0,
    strangersRefused: 0,
  };
  /** The bind address asked for (its port as asked: 0 stays 0). */
  readonly #bindAddress: SocketAddress;
  /** The sockets Iroh bound in the bind scope (with the ports the OS chose). */
  readonly #boundInScope: readonly SocketAddress[];
  readonly #advertised: readonly string[] | null;
  readonly #acceptLoop: Promise<void>;
  /** Every binding call of this endpoint and its connections still running. */
  readonly #calls: NativeCalls;
  #closing: Promise<void> | null = null;

  private constructor(
    native: IrohEndpoint,
    options: P2pEndpointOptions & { parsedBind: SocketAddress },
  ) {
    this.#native = native;
    this.#bindAddress = options.parsedBind;
    const companion = companionBindAddress(options.parsedBind);
    this.#boundInScope = coversBothFamilies(options.parsedBind)
      ? [boundSocketFor(native, options.parsedBind), boundSocketFor(native, companion)]
      : [boundSocketFor(native, options.parsedBind)];
    const advertised = options.advertiseAddresses ?? [];
    this.#advertised = advertised.length > 0 ? Object.freeze([...advertised]) : null;
    this.nodeId = native.id().toString();
    this.relayUrl = options.relayUrl;
    this.#incomingMax = options.incomingConnectionsMax ?? INCOMING_CONNECTIONS_MAX_DEFAULT;
    assert(this.#incomingMax >= 1, "incomingConnectionsMax >= 1");
    this.#isTrusted = options.isTrusted ?? (() => true);
    this.#strangerLimits = { ...STRANGER_LIMITS_DEFAULT, ...options.strangerLimits };
    this.#calls = options.nativeCalls ?? new NativeCalls();
    assert(isValidEndpointId(this.nodeId), "an endpoint's own id is canonical");
    this.#acceptLoop = this.#acceptIncoming();
  }

  /**
   * Binds the UDP socket and starts accepting. Fails with a `TransportError`
   * (`bind_failed`) whose one-line message names the address and what to do.
   */
  static async bind(options: P2pEndpointOptions): Promise<P2pEndpoint> {
    const parsedBind = parseBindAddress(options.bindAddress);
    checkAdvertised(options.advertiseAddresses ?? []);
    const companion = companionBindAddress(parsedBind);
    let native: IrohEndpoint;
    try {
      // Without the other family's loopback (IPv6 disabled on lo, say), the pair cannot bind.
      if (!isLocalHost(companion.host)) throw new Error(`no interface has ${companion.host}`);
      native = await bindNative(options, [parsedBind, companion]);
    } catch (error) {
      if (error instanceof TransportError) throw error;
      // The companion's port is 0, so only the bind address itself can be taken by another.
      if (isAddressInUse(error)) throw bindError(options.bindAddress, error);
      // Iroh then binds the wildcard socket of that family; connections arriving there are
      // still dropped. A failed pair may hold the bind address for a moment after it fails,
      // so the bind alone is tried again, briefly, while the address is still in use.
      native = await bindAloneWhileReleased(options, parsedBind);
      logger.warn(
        "Could not bind {companion} ({cause}): Iroh binds the wildcard address of that IP " +
          "family instead; connections that arrive there outside --bind are dropped",
        { companion: formatSocketAddress(companion), cause: describeIrohError(error) },
      );
    }
    return new P2pEndpoint(native, { ...options, parsedBind });
  }

  /**
   * The `ip:port` addresses peers are told to dial: `advertiseAddresses` when given;
   * otherwise the bound address, or for a wildcard bind the addresses of the interfaces of
   * its IP family. Never an address of a socket that was not asked for.
   */
  addresses(): string[] {
    if (this.#advertised !== null) return [...this.#advertised];
    return defaultAdvertisedAddresses(this.#boundInScope, Deno.networkInterfaces());
  }

  /** The UDP sockets Iroh has open, as `ip:port` (for logs and tests). */
  boundSockets(): string[] {
    return this.#native.boundSockets();
  }

  /**
   * The relay this endpoint is connected to right now (its home relay, as Iroh reports it
   * in its own address), or `null`: always with relays off, and with `relayUrl` until the
   * endpoint has reached that relay. What peers should dial, unlike `relayUrl`, which is
   * only what was configured.
   */
  homeRelayUrl(): string | null {
    if (this.relayUrl === null) return null;
    return this.#native.addr().relayUrl() ?? null;
  }

  /** Snapshot of the connection counters. */
  counters(): P2pEndpointCounters {
    return { ...this.#counters };
  }

  /** How many calls into the binding this endpoint and its connections have running. */
  nativeCallsRunning(): number {
    return this.#calls.running;
  }

  /** Registers `listener` for connection events; returns a function that removes it. */
  onEvent(listener: (event: P2pEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Routes accepted connections that negotiated `alpn` to `handler`. The endpoint offers
   * exactly the protocols registered here, so a peer asking for another one is refused in
   * the handshake.
   */
  handle(alpn: string, handler: ConnectionHandler, options?: HandleOptions): void {
    assert(!this.#routes.has(alpn), "one handler per ALPN", { detail: () => `alpn=${alpn}` });
    const frameBytesMax = options?.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
    this.#routes.set(alpn, { handler, frameBytesMax });
    this.#native.setAlpns([...this.#routes.keys()].map((known) => Array.from(alpnBytes(known))));
  }

  /**
   * Connects to `peer` for `alpn` within `options.timeoutMs`. Rejects with a
   * `TransportError`: `invalid_peer`, `connect_timeout`, `wrong_identity` (the key at that
   * address is not `peer.p2pNodeId`), `connect_failed` or `connection_closed`; or with the
   * signal's reason when aborted.
   */
  async connect(peer: PeerAddress, alpn: string, options: ConnectOptions): Promise<P2pConnection> {
    assertTimeoutMs(options.timeoutMs);
    const target = endpointAddressOf(peer);
    const description = `connect ${alpn} to ${peer.p2pNodeId} at ${describeLocation(peer)}`;
    let native: IrohConnection;
    try {
      if (this.#closing !== null) {
        throw new TransportError("connection_closed", `${description}: the endpoint is closed`);
      }
      const connecting = this.#calls.track(
        this.#native.connect(target, Array.from(alpnBytes(alpn))),
      );
      native = await withDeadline(connecting, {
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        onTimeout: () =>
          new TransportError(
            "connect_timeout",
            `${description}: no answer within ${options.timeoutMs} ms`,
          ),
        onLate: (late) => late.close(BigInt(ConnectionCloseCode.normal), []),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      const failure = connectError(description, error);
      this.#emit({ type: "connection_failed", direction: "outgoing", alpn, reason: failure.code });
      throw failure;
    }
    return this.#adoptOutgoing(native, peer, { alpn, description, options });
  }

  /**
   * Closes every connection and the socket. Pending connects and accepts end; the
   * promise resolves once the accept loop has stopped and every call into the binding
   * has settled (a call still running when its object is finalized would read freed
   * memory: see `native_calls.ts`). Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const native = this.#native;
      await holdWhileClosing(
        native,
        `the P2P endpoint ${this.nodeId.slice(0, 10)}`,
        native.close(),
      );
      await this.#acceptLoop;
      if (!(await this.#calls.settled(NATIVE_CALLS_SETTLE_WAIT_MS))) {
        logger.warn("Closed the P2P endpoint with {running} binding calls still running", {
          running: this.#calls.running,
        });
      }
    })();
    return this.#closing;
  }

  /**
   * For a process that exits (`Deno.exit`) right after a bounded wait for `close()`: its exit
   * need not wait for the close to finish, since an exit runs no finalizers.
   */
  abandonClose(): void {
    releaseClose(this.#native);
  }

  #adoptOutgoing(
    native: IrohConnection,
    peer: PeerAddress,
    context: { alpn: string; description: string; options: ConnectOptions },
  ): P2pConnection {
    const { alpn, description, options } = context;
    const remoteNodeId = native.remoteId().toString();
    if (remoteNodeId !== peer.p2pNodeId) {
      // Iroh's TLS already pins the dialled key; this is the second lock on the door.
      native.close(BigInt(ConnectionCloseCode.wrongIdentity), []);
      this.#emit({
        type: "connection_failed",
        direction: "outgoing",
        alpn,
        reason: "wrong_identity",
      });
      throw new TransportError("wrong_identity", `${description}: the peer is ${remoteNodeId}`);
    }
    const frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
    const connection = new P2pConnection(native, {
      alpn,
      direction: "outgoing",
      frameBytesMax,
      nativeCalls: this.#calls,
    });
    this.#counters.outgoingOpen++;
    this.#track(connection, () => this.#counters.outgoingOpen--);
    return connection;
  }

  async #acceptIncoming(): Promise<void> {
    for (;;) {
      let incoming: IrohIncoming | null;
      try {
        incoming = await this.#calls.track(this.#native.acceptNext());
      } catch (error) {
        logger.error("Stopped accepting P2P connections: {cause}", {
          cause: describeIrohError(error),
        });
        return;
      }
      if (incoming === null) return;
      if (this.#counters.incomingOpen >= this.#incomingMax) {
        this.#counters.incomingRefused++;
        this.#emit({
          type: "connection_failed",
          direction: "incoming",
          alpn: null,
          reason: "over_limit",
        });
        // Debug, not warning: a flood of connections must not become a flood of log lines.
        // The refusals are counted and reported as events for metrics.
        logger.debug("Refused an incoming P2P connection: {open} are open, the limit", {
          open: this.#counters.incomingOpen,
        });
        this.#calls.track(incoming.refuse()).catch(() => {});
        continue;
      }
      this.#counters.incomingOpen++;
      // #acceptOne() handles its own failures; the catch only keeps a bug from becoming
      // an unhandled rejection that would end the process.
      this.#acceptOne(incoming).catch((error) => {
        logger.error("Accepting a P2P connection failed unexpectedly: {error}", { error });
      });
    }
  }

  async #acceptOne(incoming: IrohIncoming): Promise<void> {
    if (!(await this.#arrivedInBindScope(incoming))) {
      this.#counters.incomingOpen--;
      this.#counters.incomingOutsideBind++;
      this.#emit({
        type: "connection_failed",
        direction: "incoming",
        alpn: null,
        reason: "outside_bind",
      });
      // Ignored, not refused: no answer goes back, as if nothing listened there.
      this.#calls.track(incoming.ignore()).catch(() => {});
      return;
    }
    const remoteAddress = await remoteAddressOf(incoming, this.#calls);
    const entry: IncomingEntry = {
      source: remoteAddress === null ? null : sourceOfAddress(remoteAddress),
      remoteNodeId: null,
    };
    // Before the handshake the key is unknown: the connection counts as a stranger's.
    if (this.#strangerCapReached(entry)) {
      this.#counters.incomingOpen--;
      this.#refuseStranger(null);
      this.#calls.track(incoming.refuse()).catch(() => {});
      return;
    }
    this.#incoming.add(entry);
    const forget = () => {
      this.#incoming.delete(entry);
      this.#counters.incomingOpen--;
    };
    let alpn: string | null = null;
    let connection: P2pConnection;
    let route: Route | undefined;
    try {
      const accepting = await this.#calls.track(incoming.accept());
      // The ALPN is read from the established connection, not from `accepting.alpn()`: that
      // one awaits the handshake data of a connection that may close meanwhile, and the
      // binding's QUIC library then panics ("spurious handshake data ready notification"),
      // which aborts the whole process. The handshake completes before the route is looked
      // up either way.
      const native = await this.#calls.track(accepting.connect());
      alpn = alpnText(native.alpn());
      route = this.#routes.get(alpn);
      if (route === undefined) {
        native.close(BigInt(ConnectionCloseCode.refused), []);
        throw new Error(`no handler for ALPN ${alpn}`);
      }
      entry.remoteNodeId = native.remoteId().toString();
      if (this.#strangerCapReached(entry)) {
        native.close(BigInt(ConnectionCloseCode.refused), Array.from(STRANGER_REFUSAL_BYTES));
        forget();
        this.#refuseStranger(alpn);
        return;
      }
      connection = new P2pConnection(native, {
        alpn,
        direction: "incoming",
        frameBytesMax: route.frameBytesMax,
        remoteAddress,
        nativeCalls: this.#calls,
      });
    } catch (error) {
      forget();
      this.#counters.handshakeFailures++;
      this.#emit({
        type: "connection_failed",
        direction: "incoming",
        alpn,
        reason: "handshake_failed",
      });
      logger.debug("Incoming P2P handshake failed: {cause}", {
        alpn,
        cause: describeIrohError(error),
      });
      return;
    }
    this.#track(connection, forget);
    this.#runHandler(route.handler, connection);
  }

  /** Whether `incoming` arrived at the bind address (or over the configured relay). */
  async #arrivedInBindScope(incoming: IrohIncoming): Promise<boolean> {
    const local = await this.#calls.track(incoming.localAddr()).catch(() => null);
    if (local?.kind === "relay") return this.relayUrl !== null;
    if (local?.kind !== "ip" || local.addr === undefined) return false;
    return isInBindScope(this.#bindAddress, parseIpAddress(local.addr));
  }

  /**
   * Whether `entry`, if it is a stranger's, would exceed a cap on strangers. Before its
   * handshake (no key yet), it is held to the strangers' total and to the handshakes in
   * progress from its source, so that a member behind the same address as a stranger is
   * not refused before it can say who it is. After it, a stranger is held to the
   * established strangers' connections from its source and of its key. `entry` itself is
   * never counted.
   */
  #strangerCapReached(entry: IncomingEntry): boolean {
    const handshaking = entry.remoteNodeId === null;
    if (this.#isTrustedEntry(entry)) return false;
    const limits = this.#strangerLimits;
    let strangers = 0;
    let fromSource = 0;
    let withKey = 0;
    for (const other of this.#incoming) {
      if (other === entry) continue;
      if (this.#isTrustedEntry(other)) continue;
      const otherHandshaking = other.remoteNodeId === null;
      strangers++;
      const sameSource = entry.source !== null && other.source === entry.source;
      if (sameSource && otherHandshaking === handshaking) fromSource++;
      if (!handshaking && other.remoteNodeId === entry.remoteNodeId) withKey++;
    }
    return strangers >= limits.connectionsMax ||
      fromSource >= limits.connectionsPerSourceMax ||
      withKey >= limits.connectionsPerKeyMax;
  }

  #isTrustedEntry(entry: IncomingEntry): boolean {
    return entry.remoteNodeId !== null && this.#isTrusted(entry.remoteNodeId);
  }

  #refuseStranger(alpn: string | null): void {
    this.#counters.strangersRefused++;
    this.#emit({
      type: "connection_failed",
      direction: "incoming",
      alpn,
      reason: "stranger_limit",
    });
    // Debug, not warning: a flood of connections must not become a flood of log lines.
    logger.debug(
      "Refused a stranger's incoming P2P connection: its source or key holds the most allowed",
    );
  }

  #runHandler(handler: ConnectionHandler, connection: P2pConnection): void {
    const fail = (error: unknown) => {
      logger.error("The {alpn} handler failed on a connection from {peer}: {error}", {
        alpn: connection.alpn,
        peer: connection.remoteNodeId,
        error,
      });
      connection.close("internal error", ConnectionCloseCode.refused);
    };
    try {
      Promise.resolve(handler(connection)).catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  #track(connection: P2pConnection, onClosed: () => void): void {
    const { direction, alpn, remoteNodeId } = connection;
    this.#emit({ type: "connection_opened", direction, alpn, remoteNodeId });
    connection.closed.then(() => {
      onClosed();
      const reason = connection.closeReason ?? "closed";
      this.#emit({ type: "connection_closed", direction, alpn, remoteNodeId, reason });
    });
  }

  #emit(event: P2pEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        logger.error("A P2P event listener failed: {error}", { error });
      }
    }
  }
}

/** Binds a native endpoint on `addresses` (at most one per IP family). */
/** Whether `host` is an address of one of this machine's interfaces (or a wildcard). */
function isLocalHost(host: string): boolean {
  if (host === "0.0.0.0" || host === "::") return true;
  return Deno.networkInterfaces().some((iface) => iface.address === host);
}

function isAddressInUse(error: unknown): boolean {
  return /address already in use/i.test(describeIrohError(error));
}

/** Tries of {@linkcode bindAloneWhileReleased}, `BIND_RETRY_PAUSE_MS` apart: 2 s in all. */
const BIND_RETRIES_MAX = 20;
const BIND_RETRY_PAUSE_MS = 100;

/**
 * Binds `bind` alone, trying again while it is "already in use": a bind of a pair that
 * failed on its other socket may release this one only after a moment. Any other failure,
 * or one that lasts, is the user's: a `TransportError` naming the address and what to do.
 */
async function bindAloneWhileReleased(
  options: P2pEndpointOptions,
  bind: SocketAddress,
): Promise<IrohEndpoint> {
  for (let attempt = 1;; attempt++) {
    try {
      return await bindNative(options, [bind]);
    } catch (error) {
      if (!isAddressInUse(error) || attempt >= BIND_RETRIES_MAX) {
        throw bindError(options.bindAddress, error);
      }
      await new Promise((resolve) => setTimeout(resolve, BIND_RETRY_PAUSE_MS));
    }
  }
}

async function bindNative(
  options: P2pEndpointOptions,
  addresses: readonly SocketAddress[],
): Promise<IrohEndpoint> {
  const builder = Endpoint.builder();
  presetMinimal(builder);
  configureBuilder(builder, options);
  // An address for a family replaces Iroh's default wildcard socket of that family.
  for (const address of addresses) builder.bindAddr(formatSocketAddress(address));
  return await builder.bind();
}

/** The `ip:port` an incoming connection came from, or `null` (relayed, or not known). */
async function remoteAddressOf(
  incoming: IrohIncoming,
  calls: NativeCalls,
): Promise<string | null> {
  const remote = await calls.track(incoming.remoteAddr()).catch(() => null);
  return remote?.kind === "ip" && remote.addr !== undefined ? remote.addr : null;
}

function configureBuilder(
  builder: ReturnType<typeof Endpoint.builder>,
  options: P2pEndpointOptions,
): void {
  const { relayUrl, secretKey } = options;
  if (secretKey.length !== SECRET_KEY_BYTES) {
    throw new TransportError(
      "bind_failed",
      `the secret key has ${secretKey.length} bytes; an Iroh secret key has ${SECRET_KEY_BYTES}`,
    );
  }
  builder.secretKey(Array.from(secretKey));
  builder.alpns([]);
  try {
    builder.relayMode(
      relayUrl === null ? RelayMode.disabled() : RelayMode.customFromUrls([relayUrl]),
    );
  } catch (error) {
    throw new TransportError(
      "bind_failed",
      `relay URL ${relayUrl}: not usable (${describeIrohError(error)}); give an http(s) URL`,
      { cause: error },
    );
  }
}

function parseBindAddress(bindAddress: string): SocketAddress {
  const address = parseSocketAddress(bindAddress);
  if (address === null) {
    throw new TransportError(
      "bind_failed",
      `UDP ${bindAddress}: not an ip:port address; bind to an IP address and port, ` +
        "e.g. 127.0.0.1:7001 or [::1]:7001",
    );
  }
  return address;
}

function checkAdvertised(addresses: readonly string[]): void {
  if (addresses.length > PEER_ADDRESSES_MAX) {
    throw new TransportError(
      "bind_failed",
      `${addresses.length} advertised addresses; at most ${PEER_ADDRESSES_MAX} are accepted`,
    );
  }
  for (const text of addresses) {
    const address = parseSocketAddress(text);
    if (address === null || !isDialableAddress(address)) {
      throw new TransportError(
        "bind_failed",
        `advertised address ${JSON.stringify(text)}: not a dialable ip:port; ` +
          "give an IP address and a port other than 0",
      );
    }
  }
}

/** The socket Iroh bound for `bind`: same IP family, and its host unless the port was 0. */
function boundSocketFor(native: IrohEndpoint, bind: SocketAddress): SocketAddress {
  const bound = native.boundSockets()
    .map((text) => parseSocketAddress(text))
    .find((address) => address !== null && address.family === bind.family);
  assert(bound !== undefined && bound !== null, "Iroh bound a socket for the bind address", {
    detail: () => `bind=${formatSocketAddress(bind)} sockets=${native.boundSockets().join(",")}`,
  });
  assert(bound.host === bind.host, "the bound socket is on the bind host");
  return bound;
}

const BIND_ADVICE: [RegExp, string][] = [
  [/address already in use/i, "already in use; stop the process using it or choose another port"],
  [
    /cannot assign requested address|address not available/i,
    "no interface of this machine has that address; bind to one of its addresses",
  ],
  [/permission denied/i, "permission denied; choose a port of 1024 or above"],
];

function bindError(bindAddress: string, error: unknown): TransportError {
  const cause = describeIrohError(error);
  const advice = BIND_ADVICE.find(([pattern]) => pattern.test(cause))?.[1];
  const message = advice === undefined
    ? `UDP ${bindAddress}: cannot bind (${cause}); check the bind address`
    : `UDP ${bindAddress}: ${advice}`;
  return new TransportError("bind_failed", message, { cause: error });
}

function endpointAddressOf(peer: PeerAddress): InstanceType<typeof EndpointAddr> {
  const fail = (rule: string): never => {
    throw new TransportError("invalid_peer", `peer ${peer.p2pNodeId}: ${rule}`);
  };
  if (!isValidEndpointId(peer.p2pNodeId)) fail("not a valid Iroh endpoint id");
  if (peer.addresses.length > PEER_ADDRESSES_MAX) {
    fail(`${peer.addresses.length} addresses; at most ${PEER_ADDRESSES_MAX} are accepted`);
  }
  const addresses = peer.addresses.map((text) => {
    const address = parseSocketAddress(text);
    return address !== null && isDialableAddress(address)
      ? formatSocketAddress(address)
      : fail(`address ${JSON.stringify(text)} is not a dialable ip:port`);
  });
  if (addresses.length === 0 && peer.relayUrl === null) fail("no address and no relay URL");
  return new EndpointAddr(EndpointId.fromString(peer.p2pNodeId), peer.relayUrl, addresses);
}

function describeLocation(peer: PeerAddress): string {
  const places = [...peer.addresses];
  if (peer.relayUrl !== null) places.push(`relay ${peer.relayUrl}`);
  return places.join(", ");
}

function connectError(description: string, error: unknown): TransportError {
  if (error instanceof TransportError) return error;
  const cause = describeIrohError(error);
  if (/invalid peer certificate/i.test(cause)) {
    return new TransportError(
      "wrong_identity",
      `${description}: the endpoint there has another key (${cause})`,
      { cause: error },
    );
  }
  if (/no application protocol|doesn't support any known protocol/i.test(cause)) {
    return new TransportError("connect_failed", `${description}: the peer does not serve it`, {
      cause: error,
    });
  }
  const code = /timed out/i.test(cause) ? "connect_timeout" : "connect_failed";
  return new TransportError(code, `${description}: ${cause}`, { cause: error });
}
