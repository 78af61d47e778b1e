/**
 * `BlixardClient`: a program's way into a cluster, and what the `cluster` and `kv`
 * commands and the benchmark use. Like a joiner, it knows only a member's ordinary
 * `host:port`: it reads that member's P2P identity from `/bootstrap`, connects over Iroh
 * (checking the key), and from then on talks RPC on `blixard/rpc/1`.
 *
 * Writes carry a client id and a sequence number, so retrying one after a timeout, a lost
 * connection or a leader change applies it once (Raft thesis §6.3). The client keeps a
 * pool of such sessions, one per write in flight, since a session sends one command at a
 * time. When the node it talks to fails, the client moves to another member it learned
 * from `cluster.status`, which is how it rides through a failover.
 *
 * `peer` may also be `dns:NAME`, whose TXT records name members or carry their identity
 * itself; with a `peerCache`, a peer verified by an earlier run is dialled without HTTP.
 *
 * With the cluster's secret (`clusterSecret`), the client refuses a `/bootstrap` answer not
 * signed with it or stale, and before its first request to any node checks that node's proof
 * of the secret and proves its own (DESIGN.md section 8, mutual proof), including the
 * members it moves to later; and it talks only to the keys that are current members, as the
 * first node (which proved the secret) lists them. Without it, a cluster that has a secret
 * answers `unauthenticated`, which the client reports at once.
 *
 * @module
 */

import { AuthenticatingRpcClient } from "../auth/authenticate.ts";
import type { ClusterSecret } from "../auth/cluster_secret.ts";
import { findSeed } from "../bootstrap/bootstrap_client.ts";
import type { PeerCache } from "../bootstrap/peer_cache.ts";
import type { TxtResolver } from "../bootstrap/peer_source.ts";
import type { BackupHeader } from "../backup/backup_file.ts";
import { BACKUP_BEGIN_RPC } from "../backup/backup_rpcs.ts";
import { fetchSealedChunks, TransferError } from "../backup/backup_transfer.ts";
import {
  COMPARE_AND_SET_RPC,
  DELETE_RPC,
  GET_RPC,
  KEY_BYTES_MAX,
  LEAVE_RPC,
  LIST_RPC,
  PUT_MANY_BYTES_MAX,
  PUT_MANY_ITEMS_MAX,
  PUT_MANY_RPC,
  REMOVE_RPC,
  STATUS_RPC,
  type StatusJson,
  VALUE_BYTES_MAX,
} from "../transport/cluster_rpcs.ts";
import { P2pEndpoint, type PeerAddress } from "../transport/p2p_endpoint.ts";
import { INVITE_RPC, INVITES_RPC, REVOKE_INVITE_RPC } from "../transport/invite_rpcs.ts";
import type { InviteRole } from "../state_machine/invites.ts";
import { type PutItem, WriteBatcher } from "./write_batcher.ts";
import {
  RpcClient,
  type RpcDefinition,
  RpcError,
  type RpcRequestOf,
  type RpcResponseOf,
} from "../transport/rpc.ts";
import { backoffMs } from "../util/backoff.ts";
import { sleep } from "../util/sleep.ts";

/** Deadline of one operation, retries included, unless the call says otherwise. */
export const OPERATION_TIMEOUT_MS_DEFAULT = 10_000;
/** Default deadline of one attempt at one node, before the client tries another. */
export const ATTEMPT_TIMEOUT_MS_DEFAULT = 3_000;
/** Pauses between retries. */
const RETRY_BACKOFF_MIN_MS = 10;
const RETRY_BACKOFF_MAX_MS = 200;

/** Codes after which an operation is retried (at another member when the node is gone). */
const RETRYABLE = new Set([
  "unavailable",
  "deadline_exceeded",
  "timeout",
  "dropped",
  "no_leader",
  "not_leader",
  "overloaded",
  "stopping",
  "busy",
  "connection_closed",
  "disk_full",
  // The member that forwarded the call was removed (and does not know it yet): the call
  // itself may be fine, through another member.
  "not_member",
]);

/**
 * Codes of a node that answered but knows no leader yet, or lost its leader: it forwards
 * to the next leader by itself. Moving to another member would often mean trying the dead
 * leader and losing a whole attempt deadline on it.
 */
const LEADER_CHANGING = new Set(["no_leader", "not_leader", "dropped"]);
/** Codes of answers that say the request was not started: retried even where a retry must not repeat work. */
const NOTHING_STARTED = new Set([...LEADER_CHANGING, "busy", "overloaded"]);
/**
 * How long the client stays with a node that keeps answering `LEADER_CHANGING` before it
 * tries another (that node may be cut off from the majority): beyond the longest election
 * timeout (600 ms), so that a plain election is waited out where the client is.
 */
const LEADER_CHANGE_WAIT_MS = 1_000;

/** An operation failed; `code` is the RPC error code (e.g. `invalid`, `timeout`). */
export class ClientError extends Error {
  override name = "ClientError";
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Options of {@linkcode BlixardClient.connect}. */
export interface ConnectOptions {
  /** Deadline for reaching the first node. */
  timeoutMs?: number;
  /**
   * Deadline of one attempt at one node (default 3 s). A node that died with the request
   * in flight answers nothing, so this bounds how long the client waits before it moves
   * to another member.
   */
  attemptTimeoutMs?: number;
  /** The cluster's secret, when it has one (default: none). */
  clusterSecret?: ClusterSecret | null;
  /**
   * Verified identities kept between runs (`PeerCache.open(defaultPeerCachePath(env))`):
   * a peer found there is dialled without fetching its `/bootstrap`, and the cache is saved
   * after connecting. Default: none.
   */
  peerCache?: PeerCache | null;
  /** TXT lookups for a `dns:NAME` peer, e.g. `txtResolverFor(--dns-server)` (default: system). */
  resolveTxt?: TxtResolver;
  /**
   * A self-hosted iroh relay for the client's own endpoint, to reach members that are
   * reachable only through their relay (default: none, relays off).
   */
  relayUrl?: string | null;
}

/** Per-operation options. */
export interface OperationOptions {
  /** Deadline, retries included (default 10 s). */
  timeoutMs?: number;
}

interface Session {
  clientId: string;
  nextSequence: number;
}

/** A connection to a Blixard cluster. Close it with `close()`. */
export class BlixardClient {
  readonly #endpoint: P2pEndpoint;
  readonly #rpc: RpcClient;
  /** Members to talk to; the first is the current one. */
  #targets: PeerAddress[];
  readonly #freeSessions: Session[] = [];
  readonly #attemptTimeoutMs: number;
  /** Aborted by `close()`: ends the pauses between retries at once. */
  readonly #closing = new AbortController();
  /** With a secret: talk only to current members' keys (the seed included only if one). */
  readonly #membersOnly: boolean;
  readonly #putBatcher = new WriteBatcher(
    async (items, { timeoutMs }) =>
      (await this.#callOnce(PUT_MANY_RPC, { items }, { timeoutMs })).results,
    { itemsMax: PUT_MANY_ITEMS_MAX, bytesMax: PUT_MANY_BYTES_MAX },
  );

  private constructor(
    endpoint: P2pEndpoint,
    first: PeerAddress,
    options: { attemptTimeoutMs: number; clusterSecret: ClusterSecret | null },
  ) {
    this.#endpoint = endpoint;
    this.#membersOnly = options.clusterSecret !== null;
    this.#rpc = options.clusterSecret === null
      ? new RpcClient(endpoint)
      : new AuthenticatingRpcClient(endpoint, { secret: options.clusterSecret });
    this.#targets = [first];
    this.#attemptTimeoutMs = options.attemptTimeoutMs;
  }

  /**
   * Connects through `peer` (`host:port` of any member, a `/bootstrap` URL, or `dns:NAME`):
   * reads its identity (over HTTP, from DNS, or from the cache), connects over Iroh with
   * that key, and learns the other members.
   */
  static async connect(peer: string, options: ConnectOptions = {}): Promise<BlixardClient> {
    const secretKey = crypto.getRandomValues(new Uint8Array(32));
    const endpoint = await P2pEndpoint.bind({
      secretKey,
      bindAddress: bindAddressFor(peer),
      relayUrl: options.relayUrl ?? null,
    });
    const clusterSecret = options.clusterSecret ?? null;
    const peerCache = options.peerCache ?? null;
    try {
      const seed = await findSeed([peer], {
        endpoint,
        joinTimeoutMs: options.timeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT,
        backoffInitialMs: 50,
        backoffMaxMs: 500,
        clusterSecret,
        ...(peerCache === null ? {} : { seedCache: peerCache }),
        ...(options.resolveTxt === undefined ? {} : { resolveTxt: options.resolveTxt }),
      });
      seed.connection.close("seed verified");
      await peerCache?.save();
      const client = new BlixardClient(endpoint, {
        p2pNodeId: seed.info.p2p_node_id,
        addresses: seed.info.p2p_addresses,
        relayUrl: seed.info.p2p_relay_url,
      }, {
        attemptTimeoutMs: options.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS_DEFAULT,
        clusterSecret,
      });
      await client.#learnMembers();
      return client;
    } catch (error) {
      await endpoint.close();
      throw error;
    }
  }

  /**
   * A consistent image of the replicated state from the node the client talks to
   * (`cluster backup`): its position at once, then its chunks as they arrive. The node took
   * the image after a ReadIndex round, so it holds every write acknowledged before. The
   * chunks come sealed from `httpUrl` (that node's `GET /backup`, `backup_transfer.ts`);
   * `timeoutMs` bounds taking the image, and each wait for data after it.
   */
  async backup(
    options: OperationOptions & { chunkBytes: number; httpUrl: string },
  ): Promise<{ header: BackupHeader; chunks: AsyncGenerator<Uint8Array> }> {
    const timeoutMs = options.timeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT;
    const { backupId, key, ...header } = await this.#callOnce(
      BACKUP_BEGIN_RPC,
      { chunkBytes: options.chunkBytes },
      { timeoutMs },
    );
    const url = new URL(options.httpUrl);
    url.searchParams.set("id", backupId);
    const chunks = await fetchSealedChunks(url, key, { idleMs: timeoutMs }).catch((error) => {
      if (!(error instanceof TransferError)) throw error;
      throw new ClientError("unavailable", error.message.replace("the transfer", "the backup"));
    });
    return { header, chunks };
  }

  /** The `/status` of the node the client talks to. */
  async status(options: OperationOptions = {}): Promise<StatusJson> {
    return await this.#call(STATUS_RPC, {}, options);
  }

  /** Sets `key` to `value`; resolves with the commit index once committed. */
  async put(
    key: Uint8Array | string,
    value: Uint8Array | string,
    options: OperationOptions = {},
  ): Promise<{ index: number }> {
    const item = { key: checkedKey(key), value: checkedValue(value) };
    return await this.#write((request) =>
      this.#retrying(
        "kv.put",
        options,
        (timeoutMs) => this.#putInBatch({ ...item, request }, timeoutMs),
      )
    );
  }

  /** Removes `key`; `existed` tells whether it was there. */
  async delete(
    key: Uint8Array | string,
    options: OperationOptions = {},
  ): Promise<{ index: number; existed: boolean }> {
    const keyBytes = checkedKey(key);
    return await this.#write((request) =>
      this.#call(DELETE_RPC, { key: keyBytes, request }, options)
    );
  }

  /** Sets `key` to `value` if it holds `expected` (`null`: only if absent). */
  async compareAndSet(
    key: Uint8Array | string,
    change: { expected: Uint8Array | string | null; value: Uint8Array | string },
    options: OperationOptions = {},
  ): Promise<{ index: number; succeeded: boolean; current: Uint8Array | null }> {
    const request = {
      key: checkedKey(key),
      expected: change.expected === null ? null : checkedValue(change.expected),
      value: checkedValue(change.value),
    };
    return await this.#write((session) =>
      this.#call(COMPARE_AND_SET_RPC, { ...request, request: session }, options)
    );
  }

  /** The value of `key` (linearizable), or `null` when absent. */
  async get(key: Uint8Array | string, options: OperationOptions = {}): Promise<Uint8Array | null> {
    const { value } = await this.#call(GET_RPC, { key: checkedKey(key) }, options);
    return value;
  }

  /** Every pair under `prefix` (linearizable per page), in byte order of the key, up to `limit`. */
  async list(
    prefix: Uint8Array | string = new Uint8Array(),
    options: OperationOptions & { limit?: number } = {},
  ): Promise<{ key: Uint8Array; value: Uint8Array }[]> {
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    const items: { key: Uint8Array; value: Uint8Array }[] = [];
    let startAfter: Uint8Array | null = null;
    for (;;) {
      const pageLimit = Math.min(10_000, limit - items.length);
      const page: RpcResponseOf<typeof LIST_RPC> = await this.#call(
        LIST_RPC,
        { prefix: checkedKey(prefix, { allowEmpty: true }), startAfter, limit: pageLimit },
        options,
      );
      items.push(...page.items);
      if (!page.more || items.length >= limit || page.items.length === 0) return items;
      startAfter = page.items[page.items.length - 1]!.key;
    }
  }

  /** Asks the node the client talks to to leave the cluster (it then stops). */
  async leave(options: OperationOptions = {}): Promise<{ index: number }> {
    // Leaving is about the node the client talks to, so a retry stays there; only answers
    // that say nothing was started are retried (an election under way, a busy node).
    return await this.#retrying(
      LEAVE_RPC.method,
      options,
      (timeoutMs) => this.#callOnce(LEAVE_RPC, {}, { timeoutMs }),
      { stayOnNode: true },
    );
  }

  /** Removes member `nodeId`; `force` skips the quorum check. */
  async remove(
    nodeId: number,
    options: OperationOptions & { force?: boolean } = {},
  ): Promise<{ index: number }> {
    return await this.#call(REMOVE_RPC, { nodeId, force: options.force ?? false }, options);
  }

  /**
   * Creates an invite ticket valid for `ttlMs`, for `uses` joiners; `createdBy` labels it
   * in `invites()`. `role` (default `voter`) is kept in the cluster's record of the ticket:
   * a `learner` ticket's joiners are never promoted. The answer holds the ticket, the only
   * copy of its token.
   */
  async invite(
    request: { ttlMs: number; uses: number; createdBy: string; role?: InviteRole },
    options: OperationOptions = {},
  ): Promise<{ ticket: string; tokenHash: string; expiresAtMs: number; index: number }> {
    return await this.#call(INVITE_RPC, { role: "voter", ...request }, options);
  }

  /** Every invite record the cluster keeps, and the answering node's clock. */
  async invites(options: OperationOptions = {}) {
    return await this.#call(INVITES_RPC, {}, options);
  }

  /** Revokes the one outstanding invite whose token hash starts with `hashPrefix`. */
  async revokeInvite(
    hashPrefix: string,
    options: OperationOptions = {},
  ): Promise<{ tokenHash: string; index: number }> {
    return await this.#call(REVOKE_INVITE_RPC, { hashPrefix }, options);
  }

  /** Closes the connections and the client's endpoint. */
  async close(): Promise<void> {
    this.#closing.abort(new ClientError("closed", "the client was closed"));
    await this.#rpc.close();
    await this.#endpoint.close();
  }

  async #learnMembers(): Promise<void> {
    const status = await this.#callOnce(STATUS_RPC, {}, { timeoutMs: this.#attemptTimeoutMs });
    const current = this.#targets[0]!;
    const others = status.members.flatMap((member) =>
      member.p2p_node_id === null || member.p2p_node_id === current.p2pNodeId ? [] : [{
        p2pNodeId: member.p2p_node_id,
        addresses: member.p2p_addresses,
        relayUrl: member.p2p_relay_url,
      }]
    );
    const currentIsMember = status.members.some((member) =>
      member.p2p_node_id === current.p2pNodeId
    );
    // The seed proved the secret, but may have been removed since: a node that holds the
    // secret yet is no member must not be sent the operator's requests.
    if (this.#membersOnly && !currentIsMember && others.length > 0) this.#targets = others;
    else this.#targets = [current, ...others];
  }

  /** Runs a write with a session of its own, retried under the same sequence number. */
  async #write<T>(
    send: (request: { clientId: string; sequence: number }) => Promise<T>,
  ): Promise<T> {
    const session = this.#freeSessions.pop() ?? { clientId: crypto.randomUUID(), nextSequence: 1 };
    const request = { clientId: session.clientId, sequence: session.nextSequence };
    session.nextSequence++;
    try {
      return await send(request);
    } finally {
      this.#freeSessions.push(session);
    }
  }

  /** Calls `definition`, retrying retryable failures (moving to another member) until the deadline. */
  #call<Definition extends RpcDefinition>(
    definition: Definition,
    request: RpcRequestOf<Definition>,
    options: OperationOptions,
  ): Promise<RpcResponseOf<Definition>> {
    return this.#retrying(
      definition.method,
      options,
      (timeoutMs) => this.#callOnce(definition, request, { timeoutMs }),
    );
  }

  /** One put through the batcher: its own result, or its own error, within `timeoutMs`. */
  async #putInBatch(item: PutItem, timeoutMs: number): Promise<{ index: number }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ClientError("deadline_exceeded", `kv.put: no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const result = await Promise.race([this.#putBatcher.submit(item, { timeoutMs }), deadline]);
      if ("error" in result) throw new ClientError(result.error.code, result.error.message);
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs `attempt`, retrying retryable failures (moving to another member) until the deadline. */
  async #retrying<T>(
    method: string,
    options: OperationOptions,
    attemptWithin: (timeoutMs: number) => Promise<T>,
    { stayOnNode = false } = {},
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT;
    const deadlineMs = performance.now() + timeoutMs;
    /** Since when the current node has answered that the leader is changing. */
    let leaderChangingSinceMs: number | null = null;
    for (let attempt = 0;; attempt++) {
      const remainingMs = Math.floor(deadlineMs - performance.now());
      try {
        return await attemptWithin(Math.max(1, Math.min(this.#attemptTimeoutMs, remainingMs)));
      } catch (error) {
        if (!(error instanceof ClientError) || !RETRYABLE.has(error.code)) throw error;
        if (stayOnNode && !NOTHING_STARTED.has(error.code)) throw error;
        // A full disk is that member's own trouble: only another member can help.
        if (error.code === "disk_full" && this.#targets.length === 1) throw error;
        if (deadlineMs - performance.now() < 1) {
          // The last attempt's error alone names one member and its own deadline, which
          // reads as if that member were the problem; say what the whole operation met.
          throw new ClientError(
            error.code,
            `${method} did not complete within ${timeoutMs} ms (${attempt + 1} ` +
              `attempts): no leader, or no quorum reachable; last error: ${error.message}`,
          );
        }
        if (LEADER_CHANGING.has(error.code)) {
          leaderChangingSinceMs ??= performance.now();
        }
        const waitHere = error.code === "overloaded" || error.code === "busy" ||
          (leaderChangingSinceMs !== null &&
            performance.now() - leaderChangingSinceMs < LEADER_CHANGE_WAIT_MS);
        if (!waitHere && !stayOnNode) {
          // The node is gone or cannot serve: try the next member.
          this.#rotate();
          leaderChangingSinceMs = null;
        }
        const pauseMs = backoffMs(attempt, {
          initialMs: RETRY_BACKOFF_MIN_MS,
          maxMs: RETRY_BACKOFF_MAX_MS,
        });
        await sleep(
          Math.min(pauseMs, Math.max(0, deadlineMs - performance.now())),
          this.#closing.signal,
        );
      }
    }
  }

  async #callOnce<Definition extends RpcDefinition>(
    definition: Definition,
    request: RpcRequestOf<Definition>,
    options: OperationOptions,
  ): Promise<RpcResponseOf<Definition>> {
    const timeoutMs = Math.max(1, options.timeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT);
    try {
      return await this.#rpc.call(this.#targets[0]!, definition, request, { timeoutMs });
    } catch (error) {
      if (error instanceof RpcError) {
        throw new ClientError(error.code, error.remoteMessage ?? error.message);
      }
      throw new ClientError("unavailable", error instanceof Error ? error.message : String(error));
    }
  }

  #rotate(): void {
    if (this.#targets.length > 1) this.#targets.push(this.#targets.shift()!);
  }
}

const encoder = new TextEncoder();

function checkedKey(key: Uint8Array | string, options: { allowEmpty?: boolean } = {}): Uint8Array {
  const bytes = typeof key === "string" ? encoder.encode(key) : key;
  if (bytes.length > KEY_BYTES_MAX) {
    throw new ClientError(
      "invalid",
      `the key has ${bytes.length} bytes; the limit is ${KEY_BYTES_MAX}`,
    );
  }
  if (bytes.length === 0 && options.allowEmpty !== true) {
    throw new ClientError("invalid", "the key is empty");
  }
  return bytes;
}

function checkedValue(value: Uint8Array | string): Uint8Array {
  const bytes = typeof value === "string" ? encoder.encode(value) : value;
  if (bytes.length > VALUE_BYTES_MAX) {
    throw new ClientError(
      "invalid",
      `the value has ${bytes.length} bytes; the limit is ${VALUE_BYTES_MAX} (${
        VALUE_BYTES_MAX / 1024
      } KiB)`,
    );
  }
  return bytes;
}

/** Where the client's own endpoint binds: any port, on the peer's address family. */
function bindAddressFor(peer: string): string {
  return peer.startsWith("[") || peer.includes("://[") ? "[::]:0" : "0.0.0.0:0";
}
