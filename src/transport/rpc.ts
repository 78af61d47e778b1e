/**
 * Request/response calls over `blixard/rpc/1` (DESIGN.md section 5): one bidirectional
 * stream per call, one request frame and one response frame, a deadline on both sides.
 *
 * Methods are declared once with zod schemas, `defineRpc({ method, request, response })`
 * (each a function that builds its schema, on the method's first call), and both sides
 * validate against them: the server validates every request before its
 * handler runs and its own response before sending it; the client validates the request
 * before sending and the response before returning it. New methods (join, status, kv,
 * leave) are added by defining and registering them; this module does not change.
 *
 * Wire format (msgpack frames):
 * - request:  `{ type: "rpc_request", method, body }`
 * - response: `{ type: "rpc_response", ok: true, body }` or
 *             `{ type: "rpc_response", ok: false, error: { code, message } }`
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { z } from "../util/zod_mini.ts";
import { assert } from "../util/assert.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { RPC_ALPN } from "./alpn.ts";
import { assertTimeoutMs, withDeadline } from "./deadline.ts";
import { type FramedStream, StreamErrorCode } from "./framed_stream.ts";
import type { P2pConnection } from "./p2p_connection.ts";
import type { P2pEndpoint, PeerAddress } from "./p2p_endpoint.ts";
import { sourceOfAddress } from "./socket_address.ts";
import {
  STRANGER_LIMITS_DEFAULT,
  type StrangerLimits,
  type TrustCheck,
  TRUSTED_STREAMS_PER_CONNECTION_MAX,
} from "./stranger_limits.ts";
import { TransportError } from "./transport_error.ts";

const logger = getLogger(["blixard", "rpc"]);

/** Largest request or response frame: RPCs carry commands and status, not bulk data. */
export const RPC_FRAME_BYTES_MAX = 1024 * 1024;
/** Default server-side deadline per request. */
export const RPC_REQUEST_TIMEOUT_MS_DEFAULT = 10_000;
/** Default bound on requests being handled at once, across all connections. */
export const RPC_CONCURRENT_REQUESTS_MAX_DEFAULT = 64;
/** Default bound on the client's open connections (one per peer). */
export const RPC_CONNECTIONS_MAX_DEFAULT = 64;
/** Longest error message sent to a caller. */
const ERROR_MESSAGE_CHARS_MAX = 1024;
/** Longest pause a server may ask a caller to wait before retrying (`retry_after_ms`). */
export const RETRY_AFTER_MS_MAX = 60_000;

const METHOD_NAME = /^[a-z][a-z0-9_.]{0,63}$/;

/**
 * Why a call failed. The server sends `unknown_method`, `invalid_request`,
 * `deadline_exceeded`, `overloaded`, `internal`, or a code of the method's own that its
 * handler throws (e.g. `not_leader`); the client adds `unavailable` (no connection),
 * `invalid_response`, and `deadline_exceeded` for its own deadline.
 */
export type RpcErrorCode =
  | "unknown_method"
  | "invalid_request"
  | "invalid_response"
  | "deadline_exceeded"
  | "overloaded"
  | "internal"
  | "unavailable"
  | (string & Record<never, never>);

/** A failed call. Handlers throw it to answer with `code`; callers receive it. */
export class RpcError extends Error {
  override name = "RpcError";
  /** Why the call failed. */
  readonly code: RpcErrorCode;
  /** The server's own message when the server answered with this error, else `null`. */
  readonly remoteMessage: string | null;
  /**
   * How long the server asks the caller to wait before retrying (a busy leader's estimate
   * of its queue), or `null` when it did not say. Sent with the error when a handler throws.
   */
  readonly retryAfterMs: number | null;

  /** `code` is sent to the caller with `message` when a handler throws this. */
  constructor(
    code: RpcErrorCode,
    message: string,
    options?: { cause?: unknown; remoteMessage?: string; retryAfterMs?: number | null },
  ) {
    super(message, options);
    this.remoteMessage = options?.remoteMessage ?? null;
    this.retryAfterMs = options?.retryAfterMs ?? null;
    assert(METHOD_NAME.test(code), "RPC error codes are snake_case words", {
      detail: () => `code=${code}`,
    });
    this.code = code;
  }
}

/**
 * The schema of a body: classic zod's or `zod/mini`'s (`src/util/zod_mini.ts`), which share
 * zod's core; bodies are checked with the functional `z.safeParse`, which takes either.
 */
export type RpcSchema = z.core.$ZodType;

/** A method: its name and the schemas of its request and response bodies. */
export interface RpcDefinition<
  Request extends RpcSchema = RpcSchema,
  Response extends RpcSchema = RpcSchema,
> {
  /** Lower-case name, e.g. `"ping"` or `"kv.put"`. */
  readonly method: string;
  /** Schema of the request body. */
  readonly request: Request;
  /** Schema of the response body. */
  readonly response: Response;
}

/** What a caller passes for `Definition`. */
export type RpcRequestOf<Definition extends RpcDefinition> = z.input<Definition["request"]>;
/** What a caller receives from `Definition`. */
export type RpcResponseOf<Definition extends RpcDefinition> = z.output<Definition["response"]>;

/** What a handler knows about the call besides the request. */
export interface RpcContext {
  /** The caller's P2P id, authenticated by the connection's handshake. */
  remoteNodeId: string;
  /** The caller's `ip:port` as the node's socket saw it, or `null` when not known. */
  remoteAddress: string | null;
  /** Aborted when the server's deadline for this request passes. */
  signal: AbortSignal;
}

/** Serves one method. Throw `RpcError` to answer with a specific code. */
export type RpcHandler<Definition extends RpcDefinition> = (
  request: z.output<Definition["request"]>,
  context: RpcContext,
) => z.input<Definition["response"]> | Promise<z.input<Definition["response"]>>;

/** What `defineRpc` takes: the method's name and how to build the schemas of its bodies. */
export interface RpcDeclaration<Request extends RpcSchema, Response extends RpcSchema> {
  /** Lower-case name, e.g. `"ping"` or `"kv.put"`. */
  readonly method: string;
  /** Builds the schema of the request body. */
  readonly request: () => Request;
  /** Builds the schema of the response body. */
  readonly response: () => Response;
}

/**
 * Declares a method. Its name must be lower case: letters, digits, `_` and `.`. Its schemas
 * are built on the method's first call (`lazySchema`), not when the module declaring it
 * loads: a node declares every method and calls few of them while it starts.
 */
export function defineRpc<Request extends RpcSchema, Response extends RpcSchema>(
  declaration: RpcDeclaration<Request, Response>,
): RpcDefinition<Request, Response> {
  assert(
    METHOD_NAME.test(declaration.method),
    "RPC method names are lower case",
    { detail: () => `method=${JSON.stringify(declaration.method)}` },
  );
  return Object.freeze({
    method: declaration.method,
    request: lazySchema(declaration.request),
    response: lazySchema(declaration.response),
  });
}

/** Options of a call. */
export interface RpcCallOptions {
  /** Deadline for the whole call, connecting included. */
  timeoutMs: number;
  /** Gives up at once when aborted (rejects with the abort reason). */
  signal?: AbortSignal;
  /**
   * Called once the request is written (the stream finished), while the answer is awaited:
   * work that can wait for no answer is done in the caller's otherwise idle time.
   */
  onSent?: () => void;
}

const requestEnvelope = lazySchema(() =>
  z.strictObject({
    type: z.literal("rpc_request"),
    method: z.string().check(z.maxLength(64)),
    body: z.unknown(),
  })
);

const responseEnvelope = lazySchema(() =>
  z.discriminatedUnion("ok", [
    z.strictObject({ type: z.literal("rpc_response"), ok: z.literal(true), body: z.unknown() }),
    z.strictObject({
      type: z.literal("rpc_response"),
      ok: z.literal(false),
      error: z.strictObject({
        code: z.string().check(z.regex(METHOD_NAME)),
        message: z.string().check(z.maxLength(ERROR_MESSAGE_CHARS_MAX)),
        /** Absent from older nodes, and from errors that carry no estimate. */
        retry_after_ms: z.optional(z.int().check(z.minimum(0), z.maximum(RETRY_AFTER_MS_MAX))),
      }),
    }),
  ])
);

type ResponseEnvelope = z.output<typeof responseEnvelope>;

/** One line naming the first problem zod found: `"field term: expected number"`. */
function describeIssue(error: z.core.$ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  const field = issue.path.length === 0 ? "body" : `field ${issue.path.join(".")}`;
  return `${field}: ${issue.message}`;
}

/**
 * Receives the one frame the other side sends and the end of the stream, in one read.
 * Reading the end, not only the frame, also lets QUIC retire the stream at once instead
 * of when the garbage collector drops it, which would hold back the peer's stream credit.
 */
async function receiveOnly(
  stream: FramedStream,
  context: { code: "invalid_request" | "invalid_response"; what: string; prefix: string },
): Promise<unknown> {
  const frames = await stream.receiveToEnd();
  if (frames.length !== 1) {
    const { code, what, prefix } = context;
    throw new RpcError(
      code,
      `${prefix}${frames.length} ${what} frames on the stream; expected one`,
    );
  }
  return frames[0];
}

/**
 * Calls `definition` over an existing connection: opens a stream, sends the request,
 * and waits for the response within `options.timeoutMs`. Rejects with `RpcError`, or with
 * the abort reason when `options.signal` aborts.
 */
export async function callRpc<Definition extends RpcDefinition>(
  connection: P2pConnection,
  definition: Definition,
  request: RpcRequestOf<Definition>,
  options: RpcCallOptions,
): Promise<RpcResponseOf<Definition>> {
  assertTimeoutMs(options.timeoutMs);
  const description = `${definition.method} to ${connection.remoteNodeId}`;
  const body = z.safeParse(definition.request, request);
  if (!body.success) {
    throw new RpcError("invalid_request", `${description}: not sent: ${describeIssue(body.error)}`);
  }
  const call = { stream: null as FramedStream | null, abandoned: false };
  const exchange = async () => {
    call.stream = await connection.openStream();
    if (call.abandoned) return call.stream.reset(StreamErrorCode.cancelled);
    await call.stream.send({ type: "rpc_request", method: definition.method, body: body.data });
    await call.stream.finish();
    options.onSent?.();
    return await receiveOnly(call.stream, {
      code: "invalid_response",
      what: "response",
      prefix: `${description}: `,
    });
  };
  let frame: unknown;
  try {
    frame = await withDeadline(exchange(), {
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      onTimeout: () =>
        new RpcError(
          "deadline_exceeded",
          `${description}: no answer within ${options.timeoutMs} ms`,
        ),
    });
  } catch (error) {
    call.abandoned = true;
    call.stream?.reset(StreamErrorCode.cancelled);
    if (error instanceof TransportError) {
      throw new RpcError("unavailable", `${description}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return parseResponse(definition, frame, description);
}

function parseResponse<Definition extends RpcDefinition>(
  definition: Definition,
  frame: unknown,
  description: string,
): RpcResponseOf<Definition> {
  const envelope = responseEnvelope.safeParse(frame);
  if (!envelope.success) {
    throw new RpcError(
      "invalid_response",
      `${description}: malformed response: ${describeIssue(envelope.error)}`,
    );
  }
  if (!envelope.data.ok) {
    const { code, message, retry_after_ms: retryAfterMs } = envelope.data.error;
    throw new RpcError(code, `${description}: ${code}: ${message}`, {
      remoteMessage: message,
      retryAfterMs: retryAfterMs ?? null,
    });
  }
  const body = z.safeParse(definition.response, envelope.data.body);
  if (!body.success) {
    throw new RpcError(
      "invalid_response",
      `${description}: invalid response: ${describeIssue(body.error)}`,
    );
  }
  return body.data as RpcResponseOf<Definition>;
}

/** Options of an {@linkcode RpcServer}. */
export interface RpcServerOptions {
  /** Deadline per request, from its stream's arrival (default 10 s). */
  requestTimeoutMs?: number;
  /** Requests handled at once; more are answered `overloaded` (default 64). */
  concurrentRequestsMax?: number;
  /**
   * Whether a caller's key is a member's or authenticated; others are strangers, held to
   * `strangerLimits` from the moment each stream arrives. Default: everyone is trusted.
   */
  isTrusted?: TrustCheck;
  /** Bounds on strangers other than the defaults (tests). */
  strangerLimits?: Partial<StrangerLimits>;
}

interface Method {
  definition: RpcDefinition;
  handler: RpcHandler<RpcDefinition>;
}

/**
 * Serves registered methods on every `blixard/rpc/1` connection it is given.
 *
 * The gate in front of the methods (`src/auth/secret_gate.ts`) refuses strangers, but only
 * once a request is decoded; so the server also decides, when each stream arrives, what a
 * stranger may spend on it (`stranger_limits.ts`): a small frame limit (a 1 MiB request is
 * refused after its 4-byte length prefix), a short deadline to send the request, a few
 * streams per connection, a share of the requests in progress per source address and in
 * total, and the connection closes when idle. Members and authenticated keys are not
 * touched by any of it.
 */
export class RpcServer {
  readonly #methods = new Map<string, Method>();
  readonly #requestTimeoutMs: number;
  readonly #concurrentRequestsMax: number;
  readonly #isTrusted: TrustCheck;
  readonly #strangerLimits: StrangerLimits;
  #activeRequests = 0;
  /** Strangers' requests in progress. Invariant: the sum of `#strangerRequestsBySource`. */
  #strangerRequests = 0;
  readonly #strangerRequestsBySource = new Map<string, number>();

  /** A server with no methods yet. */
  constructor(options?: RpcServerOptions) {
    this.#requestTimeoutMs = options?.requestTimeoutMs ?? RPC_REQUEST_TIMEOUT_MS_DEFAULT;
    this.#concurrentRequestsMax = options?.concurrentRequestsMax ??
      RPC_CONCURRENT_REQUESTS_MAX_DEFAULT;
    this.#isTrusted = options?.isTrusted ?? (() => true);
    this.#strangerLimits = { ...STRANGER_LIMITS_DEFAULT, ...options?.strangerLimits };
    assertTimeoutMs(this.#requestTimeoutMs);
    assertTimeoutMs(this.#strangerLimits.requestTimeoutMs);
    assert(this.#concurrentRequestsMax >= 1, "concurrentRequestsMax >= 1");
  }

  /** Strangers' requests in progress now. */
  get strangerRequests(): number {
    return this.#strangerRequests;
  }

  /** Requests whose handlers are running (or whose request is still arriving). */
  get activeRequests(): number {
    return this.#activeRequests;
  }

  /** Adds a method. Each method name is registered once. */
  register<Definition extends RpcDefinition>(
    definition: Definition,
    handler: RpcHandler<Definition>,
  ): void {
    assert(
      !this.#methods.has(definition.method),
      "one handler per RPC method",
      { detail: () => `method=${definition.method}` },
    );
    this.#methods.set(definition.method, {
      definition,
      handler: handler as RpcHandler<RpcDefinition>,
    });
  }

  /** Serves `blixard/rpc/1` connections accepted by `endpoint`. */
  serve(endpoint: P2pEndpoint): void {
    endpoint.handle(RPC_ALPN, (connection) => this.serveConnection(connection), {
      frameBytesMax: RPC_FRAME_BYTES_MAX,
    });
  }

  /** Answers every stream of `connection` until it closes. */
  async serveConnection(connection: P2pConnection): Promise<void> {
    const limits = this.#strangerLimits;
    let trusted = this.#isTrusted(connection.remoteNodeId);
    const idle = trusted ? null : new IdleClose(connection, {
      idleTimeoutMs: limits.idleTimeoutMs,
      isTrusted: () => this.#isTrusted(connection.remoteNodeId),
    });
    if (!trusted) connection.setStreamsMax(limits.streamsPerConnectionMax);
    const source = connection.remoteAddress === null
      ? `relayed ${connection.remoteNodeId}`
      : sourceOfAddress(connection.remoteAddress);
    for (;;) {
      const stream = await connection.acceptStream({
        frameBytesMax: () => {
          // Decided when the stream arrives: the caller may have proved the secret since the
          // last one, on this connection or another.
          trusted ||= this.#isTrusted(connection.remoteNodeId);
          return trusted ? RPC_FRAME_BYTES_MAX : limits.frameBytesMax;
        },
      });
      if (stream === null) {
        idle?.stop();
        return;
      }
      if (trusted) {
        if (idle?.stop()) connection.setStreamsMax(TRUSTED_STREAMS_PER_CONNECTION_MAX);
        this.#serveLogged(connection, stream, this.#requestTimeoutMs);
        continue;
      }
      if (!this.#takeStrangerRequest(source)) {
        stream.reset(StreamErrorCode.refused);
        continue;
      }
      idle?.begin();
      this.#serveLogged(connection, stream, limits.requestTimeoutMs, () => {
        this.#releaseStrangerRequest(source);
        idle?.end();
      });
    }
  }

  #serveLogged(
    connection: P2pConnection,
    stream: FramedStream,
    timeoutMs: number,
    onSettled?: () => void,
  ): void {
    this.#serveStream(connection, stream, timeoutMs).catch((error) => {
      logger.error("RPC stream from {peer} failed unexpectedly: {error}", {
        peer: connection.remoteNodeId,
        error,
      });
    }).finally(onSettled);
  }

  #takeStrangerRequest(source: string): boolean {
    const fromSource = this.#strangerRequestsBySource.get(source) ?? 0;
    const limits = this.#strangerLimits;
    if (
      this.#strangerRequests >= limits.requestsMax || fromSource >= limits.requestsPerSourceMax
    ) {
      return false;
    }
    this.#strangerRequests++;
    this.#strangerRequestsBySource.set(source, fromSource + 1);
    return true;
  }

  #releaseStrangerRequest(source: string): void {
    const left = (this.#strangerRequestsBySource.get(source) ?? 0) - 1;
    assert(left >= 0 && this.#strangerRequests >= 1, "a stranger request was taken");
    this.#strangerRequests--;
    if (left === 0) this.#strangerRequestsBySource.delete(source);
    else this.#strangerRequestsBySource.set(source, left);
  }

  async #serveStream(
    connection: P2pConnection,
    stream: FramedStream,
    timeoutMs: number,
  ): Promise<void> {
    if (this.#activeRequests >= this.#concurrentRequestsMax) {
      const message = `${this.#activeRequests} requests in progress; retry later`;
      return await this.#answer(connection, stream, failure("overloaded", message));
    }
    this.#activeRequests++;
    const controller = new AbortController();
    const progress = { requestReceived: false };
    const work = this.#handle(connection, stream, { signal: controller.signal, progress });
    // The slot is held until the handler settles, not until the answer is sent, so that the
    // bound also holds for handlers that run on past their deadline.
    work.then(() => {}, () => {}).finally(() => this.#activeRequests--);
    let envelope: ResponseEnvelope;
    try {
      envelope = await withDeadline(work, {
        timeoutMs,
        onTimeout: () =>
          new RpcError("deadline_exceeded", `the server's deadline of ${timeoutMs} ms passed`),
      });
    } catch (error) {
      controller.abort(error);
      const requestLate = !progress.requestReceived && error instanceof RpcError &&
        error.code === "deadline_exceeded";
      if (error instanceof TransportError || requestLate) {
        // The stream is broken, or the request did not arrive in time: nobody to answer.
        // Resetting also ends the read that is still waiting for the request.
        stream.reset(StreamErrorCode.deadlineExceeded);
        logger.debug("RPC request from {peer} not received: {message}", {
          peer: connection.remoteNodeId,
          message: error.message,
        });
        return;
      }
      envelope = this.#failureFor(connection, error);
    }
    await this.#answer(connection, stream, envelope);
  }

  async #handle(
    connection: P2pConnection,
    stream: FramedStream,
    call: { signal: AbortSignal; progress: { requestReceived: boolean } },
  ): Promise<ResponseEnvelope> {
    const frame = await receiveOnly(stream, {
      code: "invalid_request",
      what: "request",
      prefix: "",
    });
    call.progress.requestReceived = true;
    const envelope = requestEnvelope.safeParse(frame);
    if (!envelope.success) {
      throw new RpcError("invalid_request", `malformed request: ${describeIssue(envelope.error)}`);
    }
    const method = this.#methods.get(envelope.data.method);
    if (method === undefined) {
      throw new RpcError("unknown_method", `no method ${JSON.stringify(envelope.data.method)}`);
    }
    const request = z.safeParse(method.definition.request, envelope.data.body);
    if (!request.success) {
      throw new RpcError("invalid_request", describeIssue(request.error));
    }
    const context = {
      remoteNodeId: connection.remoteNodeId,
      remoteAddress: connection.remoteAddress,
      signal: call.signal,
    };
    const result = await method.handler(request.data, context);
    const response = z.safeParse(method.definition.response, result);
    if (!response.success) {
      logger.error("The {method} handler built an invalid response: {issue}", {
        method: method.definition.method,
        issue: describeIssue(response.error),
      });
      throw new RpcError("internal", "the server built an invalid response");
    }
    return { type: "rpc_response", ok: true, body: response.data };
  }

  #failureFor(connection: P2pConnection, error: unknown): ResponseEnvelope {
    if (error instanceof RpcError) {
      logger.debug("RPC from {peer} answered {code}: {message}", {
        peer: connection.remoteNodeId,
        code: error.code,
        message: error.message,
      });
      return failure(error.code, error.message, error.retryAfterMs);
    }
    logger.error("An RPC handler failed on a request from {peer}: {error}", {
      peer: connection.remoteNodeId,
      error,
    });
    return failure("internal", "internal error; the server's log has the details");
  }

  async #answer(
    connection: P2pConnection,
    stream: FramedStream,
    envelope: ResponseEnvelope,
  ): Promise<void> {
    try {
      await stream.send(envelope);
      await stream.finish();
    } catch (error) {
      logger.debug("RPC answer to {peer} not delivered: {message}", {
        peer: connection.remoteNodeId,
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

/**
 * Closes a stranger's connection once it has had no request in progress for
 * `idleTimeoutMs`, unless its key has become trusted meanwhile.
 */
class IdleClose {
  readonly #connection: P2pConnection;
  readonly #options: { idleTimeoutMs: number; isTrusted: () => boolean };
  #inProgress = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(
    connection: P2pConnection,
    options: { idleTimeoutMs: number; isTrusted: () => boolean },
  ) {
    this.#connection = connection;
    this.#options = options;
    this.#arm();
  }

  /** A request began. */
  begin(): void {
    this.#inProgress++;
    clearTimeout(this.#timer);
  }

  /** A request ended. */
  end(): void {
    this.#inProgress--;
    if (this.#inProgress === 0) this.#arm();
  }

  /** Stops watching; returns whether it was watching. */
  stop(): boolean {
    const wasWatching = !this.#stopped;
    this.#stopped = true;
    clearTimeout(this.#timer);
    return wasWatching;
  }

  #arm(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#options.isTrusted()) return void this.stop();
      this.stop();
      this.#connection.close("idle: no request from a caller that has not proved the secret");
    }, this.#options.idleTimeoutMs);
  }
}

function failure(
  code: string,
  message: string,
  retryAfterMs: number | null = null,
): ResponseEnvelope {
  const error = { code, message: message.slice(0, ERROR_MESSAGE_CHARS_MAX) };
  if (retryAfterMs === null) return { type: "rpc_response", ok: false, error };
  const clampedMs = Math.min(RETRY_AFTER_MS_MAX, Math.max(0, Math.round(retryAfterMs)));
  return { type: "rpc_response", ok: false, error: { ...error, retry_after_ms: clampedMs } };
}

/** Options of an {@linkcode RpcClient}. */
export interface RpcClientOptions {
  /** Open connections kept, one per peer; the oldest is closed beyond it (default 64). */
  connectionsMax?: number;
}

/**
 * Calls methods on peers, keeping one connection per peer (by P2P id) and reconnecting
 * when it has closed. A call is never retried: a method need not be idempotent.
 */
export class RpcClient {
  readonly #endpoint: P2pEndpoint;
  readonly #connectionsMax: number;
  /** Open connections, by P2P id; the oldest first. */
  readonly #open = new Map<string, P2pConnection>();
  /** Connects in progress, by P2P id, shared by the calls that wait for them. */
  readonly #connecting = new Map<string, Promise<P2pConnection>>();

  /** A client that connects through `endpoint`. */
  constructor(endpoint: P2pEndpoint, options?: RpcClientOptions) {
    this.#endpoint = endpoint;
    this.#connectionsMax = options?.connectionsMax ?? RPC_CONNECTIONS_MAX_DEFAULT;
    assert(this.#connectionsMax >= 1, "connectionsMax >= 1");
  }

  /** Calls `definition` on `peer`; the deadline covers connecting too. Rejects with `RpcError`. */
  async call<Definition extends RpcDefinition>(
    peer: PeerAddress,
    definition: Definition,
    request: RpcRequestOf<Definition>,
    options: RpcCallOptions,
  ): Promise<RpcResponseOf<Definition>> {
    assertTimeoutMs(options.timeoutMs);
    const open = this.#open.get(peer.p2pNodeId);
    if (open !== undefined && !open.isClosed) {
      return await callRpc(open, definition, request, options);
    }
    const startedMs = performance.now();
    const description = `${definition.method} to ${peer.p2pNodeId}`;
    // The deadline is applied here, not only in the connect, because the connect may be
    // shared with a call that started earlier with a longer deadline.
    const connection = await withDeadline(this.#connect(peer, options.timeoutMs), {
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      onTimeout: () =>
        new RpcError(
          "deadline_exceeded",
          `${description}: not connected within ${options.timeoutMs} ms`,
        ),
    });
    const remainingMs = Math.floor(options.timeoutMs - (performance.now() - startedMs));
    if (remainingMs < 1) {
      throw new RpcError(
        "deadline_exceeded",
        `${description}: connecting took the whole ${options.timeoutMs} ms`,
      );
    }
    return await callRpc(connection, definition, request, { ...options, timeoutMs: remainingMs });
  }

  /** Closes every connection the client holds. */
  async close(): Promise<void> {
    const connecting = [...this.#connecting.values()];
    this.#connecting.clear();
    for (const connection of this.#open.values()) connection.close("client closed");
    this.#open.clear();
    for (const settled of await Promise.allSettled(connecting)) {
      if (settled.status === "fulfilled") settled.value.close("client closed");
    }
  }

  /**
   * Connects to `peer`, or joins a connect already in progress. Carries no caller's signal:
   * one caller giving up must not fail the others that wait for the same connection.
   */
  #connect(peer: PeerAddress, timeoutMs: number): Promise<P2pConnection> {
    const { p2pNodeId } = peer;
    const pending = this.#connecting.get(p2pNodeId);
    if (pending !== undefined) return pending;
    this.#open.delete(p2pNodeId);
    this.#evictOldestBeyond(this.#connectionsMax - 1);
    const connecting = this.#endpoint.connect(peer, RPC_ALPN, {
      timeoutMs,
      frameBytesMax: RPC_FRAME_BYTES_MAX,
    }).then((connection) => {
      this.#open.set(p2pNodeId, connection);
      connection.closed.then(() => {
        if (this.#open.get(p2pNodeId) === connection) this.#open.delete(p2pNodeId);
      });
      return connection;
    }, (error) => {
      if (!(error instanceof TransportError)) throw error;
      throw new RpcError("unavailable", error.message, { cause: error });
    }).finally(() => {
      if (this.#connecting.get(p2pNodeId) === connecting) this.#connecting.delete(p2pNodeId);
    });
    this.#connecting.set(p2pNodeId, connecting);
    return connecting;
  }

  #evictOldestBeyond(connectionsMax: number): void {
    for (const [p2pNodeId, oldest] of this.#open) {
      if (this.#open.size + this.#connecting.size <= connectionsMax) return;
      this.#open.delete(p2pNodeId);
      oldest.close("too many connections");
    }
  }
}
