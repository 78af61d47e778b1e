/**
 * The node's HTTP server (DESIGN.md section 4): `GET /bootstrap`, `/health`, `/status`,
 * `/metrics`, and `/backup` (the sealed chunks of a backup begun over RPC) on the bind host
 * at bind port + 1000, on `Deno.serve`.
 *
 * The server only reads: the node supplies the `/bootstrap` and `/status` objects through
 * `HttpRoutes` and this module serialises them. Every request is counted in
 * `blixard_http_requests_total`; `/bootstrap`, the one route meant for strangers, is rate
 * limited per source address, with a global backstop (`source_rate_limiter.ts`), so that
 * one source flooding it cannot lock out a joiner or an operator elsewhere. The server is a
 * `BoundedHttpServer`: header, body and write deadlines, and connection caps.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { reasonOf, StartupError } from "../util/errors.ts";
import { conditionalJsonResponse } from "./conditional.ts";
import type { NodeMetrics } from "./metrics.ts";
import { BoundedHttpServer, type HttpLimits, type HttpRequestHead } from "./bounded_http_server.ts";
import { SourceRateLimiter } from "../util/source_rate_limiter.ts";
import { sourceOfAddress } from "../transport/socket_address.ts";

/** What the node supplies to the HTTP server. */
export interface HttpRoutes {
  /** The `BootstrapInfo` object (snake_case fields), or a promise of it. */
  bootstrap(): unknown;
  /** The `/status` object (snake_case fields), or a promise of it. */
  status(): unknown;
  /** `false` once the node is shutting down: `/health` then answers 503. */
  isServing(): boolean;
  /**
   * Since when this node's disk has been full (it refuses requests until space is freed),
   * or `null`: `/health` then answers 503 `disk_full`, unless asked `?exclude=disk_full`.
   */
  diskFullSince?(): string | null;
  /**
   * The sealed chunks of a backup in progress from chunk `from` (`GET /backup?id=…&from=N`,
   * see `src/backup/backup_transfer.ts`; 1 without `from`), or `null` when there is no such
   * backup or it cannot start there.
   */
  backup?(backupId: string, from: number): ReadableStream<Uint8Array> | null;
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
   * Limits `/bootstrap`; by default `bootstrapRateLimiter()`. Tests inject one with a fake
   * clock.
   */
  bootstrapLimiter?: SourceRateLimiter;
  /** Connection bounds other than the defaults (tests). */
  limits?: Partial<HttpLimits>;
}

/**
 * Sustained `/bootstrap` requests per second from one source address. A joiner fetches it
 * once per attempt, the CLI once per command.
 */
export const BOOTSTRAP_REQUESTS_PER_SECOND_PER_SOURCE = 10;
/** `/bootstrap` requests allowed in a burst from one source, e.g. a script's commands. */
export const BOOTSTRAP_BURST_PER_SOURCE = 20;
/**
 * Sustained `/bootstrap` requests per second from all sources: only a backstop, reached by
 * no single source. The answer is cached, so each costs a JSON serialisation.
 */
export const BOOTSTRAP_REQUESTS_PER_SECOND = 200;
/** `/bootstrap` requests allowed in a burst from all sources. */
export const BOOTSTRAP_BURST = 400;
/** Source addresses whose `/bootstrap` rate is remembered; the least recently seen gives way. */
export const BOOTSTRAP_SOURCES_MAX = 4096;

/** The default `/bootstrap` limiter: per source address, with a global backstop. */
export function bootstrapRateLimiter(now?: () => number): SourceRateLimiter {
  return new SourceRateLimiter({
    perSource: {
      burst: BOOTSTRAP_BURST_PER_SOURCE,
      perSecond: BOOTSTRAP_REQUESTS_PER_SECOND_PER_SOURCE,
    },
    global: { burst: BOOTSTRAP_BURST, perSecond: BOOTSTRAP_REQUESTS_PER_SECOND },
    sourcesMax: BOOTSTRAP_SOURCES_MAX,
    ...(now === undefined ? {} : { now }),
  });
}
/** Longest request path echoed back in a 404 answer. */
const PATH_CHARS_SHOWN_MAX = 200;
/** The methods every route accepts. */
const ALLOWED_METHODS = "GET, HEAD";
/** The `route` label of requests to unknown paths: raw paths would be unbounded. */
const OTHER_ROUTE = "other";

const log = getLogger(["blixard", "http"]);

type RouteHandler = (request: HttpRequestHead) => Promise<Response>;

/**
 * Starts listening on `hostname:port` and resolves once bound. No banner is printed.
 *
 * @throws {StartupError} when the address is in use, not on this machine, or not allowed.
 */
// deno-lint-ignore require-await -- async so that a failed bind rejects rather than throws
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const handlers = routeHandlers(options);
  const handler = async (request: HttpRequestHead): Promise<Response> => {
    const route = handlers.get(request.path);
    const response = await answer(request, route);
    const label = route === undefined ? OTHER_ROUTE : request.path;
    options.metrics.recordHttpRequest(label, response.status);
    return response;
  };
  let server: BoundedHttpServer;
  try {
    server = BoundedHttpServer.listen({
      hostname: options.hostname,
      port: options.port,
      handler,
      onError: (error) => internalError(error),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
  } catch (error) {
    throw listenError(error, formatAddress(options.hostname, options.port));
  }
  let stopping: Promise<void> | null = null;
  return {
    port: server.port,
    shutdown: () => stopping ??= server.shutdown(),
  };
}

async function answer(
  request: HttpRequestHead,
  handler: RouteHandler | undefined,
): Promise<Response> {
  const { path } = request;
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
    // The server drops the body of an answer to HEAD, so HEAD shares the GET handlers.
    return await handler(request);
  } catch (error) {
    return internalError(error);
  }
}

function routeHandlers(options: HttpServerOptions): Map<string, RouteHandler> {
  const { routes, metrics } = options;
  const limiter = options.bootstrapLimiter ?? bootstrapRateLimiter();
  return new Map<string, RouteHandler>([
    ["/bootstrap", async (request) => {
      const taken = limiter.tryTake(sourceOfAddress(request.remoteAddress));
      if (!taken.allowed) {
        const retryAfterSeconds = Math.max(1, Math.ceil(taken.retryAfterMs / 1000));
        return jsonResponse(429, { error: "too many /bootstrap requests; retry later" }, {
          "retry-after": String(retryAfterSeconds),
        });
      }
      return await conditionalJsonResponse(request, await routes.bootstrap());
    }],
    ["/health", (request) => Promise.resolve(healthResponse(routes, request))],
    ["/status", async () => jsonResponse(200, await routes.status())],
    ["/backup", (request) => {
      const { searchParams } = new URL(request.url);
      const backupId = searchParams.get("id") ?? "";
      // A chunk number, checked before any work: digits only, and a bounded count.
      const fromText = searchParams.get("from") ?? "1";
      const from = /^[1-9][0-9]{0,8}$/.test(fromText) ? Number(fromText) : 0;
      const body = from === 0 ? null : routes.backup?.(backupId, from) ?? null;
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

/** The `exclude` value of `/health` that leaves a full disk out (liveness probes). */
export const HEALTH_EXCLUDE_DISK_FULL = "disk_full";

/**
 * `/health`: 503 `stopping` while shutting down; 503 `disk_full` while the disk is full
 * (the node refuses every request, so a load balancer should send none; etcd's `/health`
 * answers its NOSPACE alarm the same way); 200 `ok` otherwise. A liveness probe asks
 * `?exclude=disk_full`: a restart frees no space, so it then gets 200 with `disk_full`.
 */
function healthResponse(routes: HttpRoutes, request: HttpRequestHead): Response {
  if (!routes.isServing()) return jsonResponse(503, { status: "stopping" });
  const diskFullSince = routes.diskFullSince?.() ?? null;
  if (diskFullSince === null) return jsonResponse(200, { status: "ok" });
  const excluded = new URL(request.url).searchParams.getAll("exclude")
    .some((value) => value.split(",").includes(HEALTH_EXCLUDE_DISK_FULL));
  const diskFull = {
    since: diskFullSince,
    reason: "the disk of this node's data dir is full: it refuses requests until space is " +
      "freed there, then goes on by itself",
  };
  return excluded
    ? jsonResponse(200, { status: "ok", disk_full: diskFull })
    : jsonResponse(503, { status: "disk_full", disk_full: diskFull });
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
