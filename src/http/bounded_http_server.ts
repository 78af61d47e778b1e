/**
 * A small HTTP/1.1 server with the bounds `Deno.serve` does not offer (DESIGN.md section 8:
 * "HTTP header timeouts"; issue 9 item 6): a deadline for the request head, one for its
 * body, one for writing the answer, a cap on open connections and one per source address,
 * and bounded head and body sizes. `Deno.serve` (Deno 2.9) has no header timeout and no
 * connection cap, and `Deno.serveHttp`, which took one connection at a time, is gone; so
 * the node's four read-only routes are served here, on `Deno.listen`.
 *
 * One request per connection: every answer says `connection: close`. The routes are
 * scraped or fetched once in a while, never in bulk, so keep-alive would only add state
 * that a stranger could hold. A connection over a cap is closed at once, unread.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { assert } from "../util/assert.ts";
import { sourceOfAddress } from "../transport/socket_address.ts";

const log = getLogger(["blixard", "http"]);

/** The bounds of a {@linkcode BoundedHttpServer}. */
export interface HttpLimits {
  /** Connections open at once. */
  connectionsMax: number;
  /** Connections open at once from one source address (an IPv6 /64). */
  connectionsPerSourceMax: number;
  /** From the connection's accept to the end of the request head. */
  headerTimeoutMs: number;
  /** From the end of the head to the end of the body. */
  bodyTimeoutMs: number;
  /** For writing the whole answer. */
  writeTimeoutMs: number;
  /** Bytes of the request line and headers together. */
  headBytesMax: number;
  /** Bytes of a request body (no route takes one; it is read and dropped). */
  bodyBytesMax: number;
}

/** The default bounds. */
export const HTTP_LIMITS_DEFAULT: HttpLimits = {
  connectionsMax: 128,
  connectionsPerSourceMax: 16,
  headerTimeoutMs: 5_000,
  bodyTimeoutMs: 5_000,
  writeTimeoutMs: 10_000,
  headBytesMax: 8 * 1024,
  bodyBytesMax: 16 * 1024,
};

/** One parsed request: no route needs more. */
export interface HttpRequestHead {
  /** `GET`, `HEAD`, … as sent (a token of at most 16 characters). */
  method: string;
  /** The path of the request target, without the query. */
  path: string;
  /** The whole target as a URL (`http://<Host or localhost><target>`), query included. */
  url: string;
  /** The request's headers (bounded with the head by `headBytesMax`). */
  headers: Headers;
  /** The peer's IP address. */
  remoteAddress: string;
}

/** Answers one request; a throw is answered with `onError`'s response. */
export type HttpHandler = (request: HttpRequestHead) => Promise<Response>;

/** Options of {@linkcode BoundedHttpServer.listen}. */
export interface BoundedHttpServerOptions {
  hostname: string;
  port: number;
  handler: HttpHandler;
  /** Answers a request whose handler threw. */
  onError: (error: unknown) => Response;
  /** Bounds other than the defaults (tests). */
  limits?: Partial<HttpLimits>;
}

/** A request the server answers itself, before any handler: the status and why. */
class RequestRefused extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const encoder = new TextEncoder();
const HEAD_END = encoder.encode("\r\n\r\n");
const READ_CHUNK_BYTES = 4096;
const METHOD = /^[A-Z]{1,16}$/;
const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** An HTTP/1.1 server with deadlines and connection caps. */
export class BoundedHttpServer {
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #options: BoundedHttpServerOptions;
  readonly #limits: HttpLimits;
  readonly #open = new Set<Deno.TcpConn>();
  readonly #openBySource = new Map<string, number>();
  readonly #acceptLoop: Promise<void>;
  #stopping: Promise<void> | null = null;
  /** Connections closed unread because a cap was reached. */
  refusedConnections = 0;

  private constructor(
    listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
    options: BoundedHttpServerOptions,
  ) {
    this.#listener = listener;
    this.#options = options;
    this.#limits = { ...HTTP_LIMITS_DEFAULT, ...options.limits };
    assert(
      this.#limits.connectionsPerSourceMax <= this.#limits.connectionsMax,
      "per source <= all",
    );
    this.#acceptLoop = this.#accept();
  }

  /** Listens on `hostname:port`; throws `Deno.errors.*` when it cannot. */
  static listen(options: BoundedHttpServerOptions): BoundedHttpServer {
    const listener = Deno.listen({ hostname: options.hostname, port: options.port });
    return new BoundedHttpServer(listener, options);
  }

  /** The TCP port listened on. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#open.size;
  }

  /**
   * Stops accepting and closes every connection; requests in flight are bounded by the
   * deadlines, so nothing is waited for. Idempotent.
   */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#listener.close();
      for (const conn of this.#open) closeQuietly(conn);
      await this.#acceptLoop;
    })();
    return this.#stopping;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#stopping !== null || error instanceof Deno.errors.BadResource) return;
        // E.g. out of file descriptors: wait a little rather than spin.
        log.warn("HTTP accept failed: {error}", { error });
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      try {
        this.#admit(conn);
      } catch (error) {
        // A peer that is already gone (e.g. setNoDelay on a reset socket) must not end the
        // accept loop: that would leave every later connection unanswered in the backlog.
        log.debug("HTTP connection dropped at accept: {error}", { error });
        closeQuietly(conn);
      }
    }
  }

  /** Counts `conn` against the caps and serves it, or closes it unread when over a cap. */
  #admit(conn: Deno.TcpConn): void {
    const source = sourceOfAddress(conn.remoteAddr.hostname);
    const fromSource = this.#openBySource.get(source) ?? 0;
    if (
      this.#open.size >= this.#limits.connectionsMax ||
      fromSource >= this.#limits.connectionsPerSourceMax
    ) {
      this.refusedConnections++;
      closeQuietly(conn);
      return;
    }
    conn.setNoDelay(true);
    this.#open.add(conn);
    this.#openBySource.set(source, fromSource + 1);
    this.#serve(conn).catch((error) => {
      log.error("HTTP connection failed unexpectedly: {error}", { error });
    }).finally(() => {
      closeQuietly(conn);
      this.#open.delete(conn);
      const left = (this.#openBySource.get(source) ?? 1) - 1;
      if (left === 0) this.#openBySource.delete(source);
      else this.#openBySource.set(source, left);
    });
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const limits = this.#limits;
    const remoteAddress = conn.remoteAddr.hostname;
    let response: Response;
    let method = "GET";
    try {
      const { head, rest } = await withConnDeadline(
        conn,
        limits.headerTimeoutMs,
        () => readHead(conn, limits.headBytesMax),
      );
      const parsed = parseHead(head);
      method = parsed.method;
      await withConnDeadline(
        conn,
        limits.bodyTimeoutMs,
        () => skipBody(conn, { ...parsed, rest, bodyBytesMax: limits.bodyBytesMax }),
      );
      try {
        response = await this.#options.handler({
          method,
          path: parsed.path,
          url: parsed.url,
          headers: parsed.headers,
          remoteAddress,
        });
      } catch (error) {
        response = this.#options.onError(error);
      }
    } catch (error) {
      if (!(error instanceof RequestRefused)) return; // timed out or gone: nobody to answer
      response = new Response(JSON.stringify({ error: error.message }), {
        status: error.status,
        headers: { "content-type": "application/json" },
      });
    }
    if (isStreamed(response) && method !== "HEAD") {
      await writeStreamed(conn, response, limits.writeTimeoutMs).catch(() => {});
      return;
    }
    const bytes = await serialise(response, { omitBody: method === "HEAD" });
    await withConnDeadline(conn, limits.writeTimeoutMs, () => writeAll(conn, bytes)).catch(
      () => {},
    );
  }
}

/** Runs `work` on `conn`, closing the connection (which ends its reads and writes) at the deadline. */
async function withConnDeadline<T>(
  conn: Deno.TcpConn,
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<T> {
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  try {
    return await work();
  } finally {
    clearTimeout(timer);
  }
}

async function readHead(
  conn: Deno.TcpConn,
  headBytesMax: number,
): Promise<{ head: string; rest: Uint8Array }> {
  let buffered = new Uint8Array(0);
  const chunk = new Uint8Array(READ_CHUNK_BYTES);
  for (;;) {
    const read = await conn.read(chunk);
    if (read === null) throw new Error("the peer closed before the end of the head");
    const next = new Uint8Array(buffered.length + read);
    next.set(buffered);
    next.set(chunk.subarray(0, read), buffered.length);
    buffered = next;
    const end = indexOf(buffered, HEAD_END, Math.max(0, buffered.length - read - 3));
    if (end >= 0 && end + HEAD_END.length <= headBytesMax) {
      return {
        head: new TextDecoder().decode(buffered.subarray(0, end)),
        rest: buffered.subarray(end + HEAD_END.length),
      };
    }
    if (buffered.length > headBytesMax) {
      throw new RequestRefused(431, `the request head exceeds ${headBytesMax} bytes`);
    }
  }
}

function parseHead(
  head: string,
): { method: string; path: string; url: string; headers: Headers; bodyBytes: number } {
  const [requestLine = "", ...headerLines] = head.split("\r\n");
  const [method = "", target = "", version = "", extra] = requestLine.split(" ");
  if (
    !METHOD.test(method) || !target.startsWith("/") || !/^HTTP\/1\.[01]$/.test(version) ||
    extra !== undefined
  ) {
    throw new RequestRefused(400, "malformed request line");
  }
  let bodyBytes = 0;
  const headers = new Headers();
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new RequestRefused(400, "malformed header line");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    try {
      headers.append(name, value);
    } catch {
      throw new RequestRefused(400, "malformed header line");
    }
    if (name === "transfer-encoding") {
      throw new RequestRefused(501, "transfer-encoding is not supported: no route takes a body");
    }
    if (name === "content-length") {
      if (!/^\d{1,12}$/.test(value)) throw new RequestRefused(400, "malformed content-length");
      bodyBytes = Number(value);
    }
  }
  const queryAt = target.search(/[?#]/);
  const path = queryAt < 0 ? target : target.slice(0, queryAt);
  let url: string;
  try {
    url = new URL(target, `http://${headers.get("host") ?? "localhost"}`).href;
  } catch {
    url = new URL(path, "http://localhost").href;
  }
  return { method, path, url, headers, bodyBytes };
}

async function skipBody(
  conn: Deno.TcpConn,
  request: { bodyBytes: number; rest: Uint8Array; bodyBytesMax: number },
): Promise<void> {
  if (request.bodyBytes > request.bodyBytesMax) {
    throw new RequestRefused(413, `the request body exceeds ${request.bodyBytesMax} bytes`);
  }
  let left = request.bodyBytes - request.rest.length;
  const chunk = new Uint8Array(READ_CHUNK_BYTES);
  while (left > 0) {
    const read = await conn.read(chunk);
    if (read === null) throw new Error("the peer closed before the end of the body");
    left -= read;
  }
}

async function serialise(response: Response, options: { omitBody: boolean }): Promise<Uint8Array> {
  const body = new Uint8Array(await response.arrayBuffer());
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? "Status"}`];
  for (const [name, value] of response.headers) {
    if (name !== "content-length" && name !== "connection") lines.push(`${name}: ${value}`);
  }
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  const head = encoder.encode(lines.join("\r\n"));
  if (options.omitBody) return head;
  const bytes = new Uint8Array(head.length + body.length);
  bytes.set(head);
  bytes.set(body, head.length);
  return bytes;
}

/**
 * Whether `response`'s body is streamed rather than buffered: an `application/octet-stream`
 * body (a backup) can be larger than memory should hold, so it leaves chunk by chunk,
 * delimited by the end of the connection.
 */
function isStreamed(response: Response): boolean {
  return response.body !== null &&
    response.headers.get("content-type") === "application/octet-stream";
}

/** Writes `response` chunk by chunk; each chunk has `chunkTimeoutMs` to leave. */
async function writeStreamed(
  conn: Deno.TcpConn,
  response: Response,
  chunkTimeoutMs: number,
): Promise<void> {
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_TEXT[response.status] ?? "Status"}`];
  for (const [name, value] of response.headers) {
    if (name !== "content-length" && name !== "connection") lines.push(`${name}: ${value}`);
  }
  lines.push("connection: close", "", "");
  const reader = response.body!.getReader();
  try {
    await withConnDeadline(
      conn,
      chunkTimeoutMs,
      () => writeAll(conn, encoder.encode(lines.join("\r\n"))),
    );
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      await withConnDeadline(conn, chunkTimeoutMs, () => writeAll(conn, value));
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let start = from; start + needle.length <= haystack.length; start++) {
    for (let offset = 0; offset < needle.length; offset++) {
      if (haystack[start + offset] !== needle[offset]) continue outer;
    }
    return start;
  }
  return -1;
}

function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Already closed, by the peer, a deadline or the shutdown.
  }
}
