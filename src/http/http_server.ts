/**
 * The node's HTTP server (DESIGN.md section 4): `GET /bootstrap`, `/health`, `/status`,
 * `/metrics`, and `/backup` (the sealed chunks of a backup begun over RPC) on the bind host
 * at bind port + 1000, on `Deno.serve`.
 *
 * The server only reads: the node supplies the `/bootstrap` and `/status` objects through
 * `HttpRoutes` and this module serialises them. Every request is counted in
 * `blixard_http_requests_total`; `/bootstrap`, the one route meant for strangers, is rate
 * limited by a token bucket.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { reasonOf, StartupError } from "../cli/errors.ts";
import { conditionalJsonResponse } from "./conditional.ts";
import type { NodeMetrics } from "./metrics.ts";
import { TokenBucket } from "./token_bucket.ts";

/** What the node supplies to the HTTP server. */
export interface HttpRoutes {
  /** The `BootstrapInfo` object (snake_case fields), or a promise of it. */
  bootstrap(): unknown;
  /** The `/status` object (snake_case fields), or a promise of it. */
  status(): unknown;
  /** `false` once the node is shutting down: `/health` then answers 503. */
  isServing(): boolean;
  /**
   * The sealed chunks of a backup in progress (`GET /backup?id=…`, see
   * `src/backup/backup_transfer.ts`), or `null` when there is no such backup.
   */
  backup?(backupId: string): ReadableStream<Uint8Array> | null;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The TCP port listened on (the OS's choice when 0 was asked for). */
  readonly port: number;
  /** Stops accepting, lets requests in flight finish, and frees the port. Idempotent. */
  shutdown(): Promise<void>;
}

/** Options of {@linkcode startHttpServer}. */
export interface HttpServerOptions {
  /** Host to listen on; an IPv6 address without brackets. */
  hostname: string;
  /** TCP port; 0 lets the OS choose (tests). */
  port: number;
  /** Supplies the `/bootstrap` and `/status` objects and the serving state. */
  routes: HttpRoutes;
  /** Counts the requests and renders `/metrics`. */
  metrics: NodeMetrics;
  /**
   * Limits `/bootstrap`; by default a bucket of `BOOTSTRAP_BURST` refilled at
   * `BOOTSTRAP_REQUESTS_PER_SECOND`. Tests inject one with a fake clock.
   */
  bootstrapLimiter?: TokenBucket;
}

/** Sustained `/bootstrap` requests per second. A joiner fetches it once per attempt. */
export const BOOTSTRAP_REQUESTS_PER_SECOND = 10;
/** `/bootstrap` requests allowed in a burst, e.g. several nodes joining at once. */
export const BOOTSTRAP_BURST = 20;
/** Longest request path echoed back in a 404 answer. */
const PATH_CHARS_SHOWN_MAX = 200;
/** The methods every route accepts. */
const ALLOWED_METHODS = "GET, HEAD";
/** The `route` label of requests to unknown paths: raw paths would be unbounded. */
const OTHER_ROUTE = "other";

const log = getLogger(["blixard", "http"]);

type RouteHandler = (request: Request) => Promise<Response>;

/**
 * Starts listening on `hostname:port` and resolves once bound. No banner is printed.
 *
 * @throws {StartupError} when the address is in use, not on this machine, or not allowed.
 */
// deno-lint-ignore require-await -- async so that a failed bind rejects rather than throws
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const handlers = routeHandlers(options);
  const handle = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const handler = handlers.get(path);
    const response = await answer(request, path, handler);
    options.metrics.recordHttpRequest(handler === undefined ? OTHER_ROUTE : path, response.status);
    return response;
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: () => {},
      onError: (error) => internalError(error),
    }, handle);
  } catch (error) {
    throw listenError(error, formatAddress(options.hostname, options.port));
  }
  let stopping: Promise<void> | null = null;
  return {
    port: server.addr.port,
    shutdown: () => stopping ??= server.shutdown(),
  };
}

async function answer(
  request: Request,
  path: string,
  handler: RouteHandler | undefined,
): Promise<Response> {
  if (handler === undefined) {
    const shown = path.length > PATH_CHARS_SHOWN_MAX
      ? `${path.slice(0, PATH_CHARS_SHOWN_MAX)}…`
      : path;
    return jsonResponse(404, { error: `no route for ${shown}` });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return jsonResponse(405, { error: `${request.method} is not allowed on ${path}; use GET` }, {
      allow: ALLOWED_METHODS,
    });
  }
  try {
    // Deno.serve drops the body of an answer to HEAD, so HEAD shares the GET handlers.
    return await handler(request);
  } catch (error) {
    return internalError(error);
  }
}

function routeHandlers(options: HttpServerOptions): Map<string, RouteHandler> {
  const { routes, metrics } = options;
  const limiter = options.bootstrapLimiter ??
    new TokenBucket({ capacity: BOOTSTRAP_BURST, refillPerSecond: BOOTSTRAP_REQUESTS_PER_SECOND });
  return new Map<string, RouteHandler>([
    ["/bootstrap", async (request) => {
      const taken = limiter.tryTake();
      if (!taken.allowed) {
        const retryAfterSeconds = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
        return jsonResponse(429, { error: "too many /bootstrap requests; retry later" }, {
          "retry-after": String(retryAfterSeconds),
        });
      }
      return await conditionalJsonResponse(request, await routes.bootstrap());
    }],
    ["/health", () =>
      Promise.resolve(
        routes.isServing()
          ? jsonResponse(200, { status: "ok" })
          : jsonResponse(503, { status: "stopping" }),
      )],
    ["/status", async () => jsonResponse(200, await routes.status())],
    ["/backup", (request) => {
      const backupId = new URL(request.url).searchParams.get("id") ?? "";
      const body = routes.backup?.(backupId) ?? null;
      return Promise.resolve(
        body === null
          ? jsonResponse(404, { error: "no backup in progress with this id; start it again" })
          : new Response(body, {
            headers: { "content-type": "application/octet-stream", "cache-control": "no-store" },
          }),
      );
    }],
    ["/metrics", async () => {
      const { contentType, body } = await metrics.render();
      return new Response(body, {
        headers: { "content-type": contentType, "cache-control": "no-store" },
      });
    }],
  ]);
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  if (text === undefined) throw new Error(`HTTP ${status} body is not JSON: ${String(body)}`);
  return new Response(text, {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

function internalError(error: unknown): Response {
  log.error("HTTP request failed", { error });
  return jsonResponse(500, { error: "internal error; see the node's log" });
}

function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

function listenError(error: unknown, address: string): StartupError {
  const options = { cause: error };
  if (error instanceof Deno.errors.AddrInUse) {
    return new StartupError(
      `HTTP port ${address} is in use (bind port + 1000): choose another --bind port or stop the process using it`,
      options,
    );
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return new StartupError(
      `HTTP address ${address} is not an address of this machine: choose a --bind host it has`,
      options,
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new StartupError(
      `not allowed to listen on HTTP address ${address}: ports below 1024 need privileges; choose a --bind port of 24 or more`,
      options,
    );
  }
  return new StartupError(
    `cannot listen on HTTP address ${address} (${reasonOf(error)}): check the --bind host`,
    options,
  );
}
