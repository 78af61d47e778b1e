/**
 * The RPC methods of `blixard/rpc/1` beyond `ping`: joining, status, membership and the
 * key/value API. Node and client share these definitions, so both sides validate the
 * same shapes.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { defineRpc } from "./rpc.ts";
import { isValidEndpointId } from "./iroh.ts";
import { COMMAND_LIMITS } from "../state_machine/commands.ts";
import { MEMBER_INFO_LIMITS } from "../state_machine/member_info.ts";
import { LIST_LIMIT_MAX } from "../state_machine/kv_state_machine.ts";

/** Largest key, in bytes: the state machine's own limit. */
export const KEY_BYTES_MAX = COMMAND_LIMITS.keyBytesMax;
/**
 * Largest value, in bytes. A compare-and-set carries two values in one RPC frame of at most
 * `RPC_FRAME_BYTES_MAX` (1 MiB), so a value stays well below half of it.
 */
export const VALUE_BYTES_MAX = 256 * 1024;
/** Most key and value bytes in one `kv.list` answer; the client pages with `startAfter`. */
export const LIST_RESPONSE_BYTES_MAX = 768 * 1024;
export { LIST_LIMIT_MAX };

const nodeId = lazySchema(() => z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)));
const index = lazySchema(() => z.int().check(z.nonnegative()));
const p2pNodeId = lazySchema(() =>
  z.string().check(z.refine(isValidEndpointId, "not a valid Iroh endpoint id"))
);
const bytes = (maxBytes: number) =>
  z.custom<Uint8Array>((value) => value instanceof Uint8Array, "expected bytes").check(
    z.refine((value) => value.length <= maxBytes, `at most ${maxBytes} bytes`),
  );

/** How to reach a member: the wire form of `MemberInfo`. */
export const memberAddressSchema = lazySchema(() =>
  z.strictObject({
    nodeId,
    p2pNodeId,
    addresses: z.array(
      z.string().check(z.minLength(1), z.maxLength(MEMBER_INFO_LIMITS.addressLengthMax)),
    ).check(z.maxLength(MEMBER_INFO_LIMITS.addressesMax)),
    relayUrl: z.nullable(
      z.string().check(z.minLength(1), z.maxLength(MEMBER_INFO_LIMITS.relayUrlLengthMax)),
    ),
  })
);

/** A member as `/status` shows it (snake_case, DESIGN.md section 4). */
export const statusMemberSchema = lazySchema(() =>
  z.strictObject({
    node_id: nodeId,
    role: z.enum(["voter", "learner"]),
    p2p_node_id: z.nullable(z.string()),
    p2p_addresses: z.array(z.string()),
    p2p_relay_url: z.nullable(z.string()),
  })
);

/**
 * That this node's membership was forced (`--force-new-cluster`): when, from which index,
 * and which members (ids and keys) it removed. Only on the forced node.
 */
export const forcedSchema = lazySchema(() =>
  z.strictObject({
    at: z.string(),
    from_index: index,
    removed: z.array(z.strictObject({ node_id: nodeId, p2p_node_id: z.nullable(z.string()) })),
  })
);

/** `forced` of `/status` as a type. */
export type ForcedJson = z.infer<typeof forcedSchema>;

/** The `/status` document, also answered by `cluster.status`. */
export const statusSchema = lazySchema(() =>
  z.strictObject({
    node_id: nodeId,
    cluster_id: z.nullable(z.string()),
    role: z.enum(["leader", "follower", "candidate", "learner", "joining", "stopping"]),
    term: index,
    leader_id: z.nullable(nodeId),
    commit_index: index,
    applied_index: index,
    members: z.array(statusMemberSchema),
    join: z.nullable(z.strictObject({
      phase: z.string(),
      since: z.string(),
      last_error: z.nullable(z.string()),
      /** The joiner's last index against the commit index it knows; optional for older nodes. */
      catch_up: z.optional(z.nullable(z.strictObject({ match_index: index, commit_index: index }))),
    })),
    /** The joins the answering leader serves; absent from older nodes. */
    joins: z.optional(
      z.array(z.strictObject({
        node_id: nodeId,
        phase: z.string(),
        since: z.string(),
        lag: z.nullable(index),
        /** Why a learner is not promoted yet; absent from older nodes. */
        learner_reason: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
      })).check(z.maxLength(64)),
    ),
    /** On a learner: why it is not a voter (the voter cap, or catching up); absent from older nodes. */
    learner_reason: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
    /** Present on a node whose membership was forced. */
    forced: z.optional(forcedSchema),
    /**
     * For each member this node has a Raft connection to: the path it takes and its
     * round-trip time in ms (`null` before the first measurement). Absent from older nodes.
     * Kept apart from `members`, which stay the same from one read to the next.
     */
    paths: z.optional(
      z.array(z.strictObject({
        node_id: nodeId,
        path: z.enum(["direct", "relay", "none"]),
        rtt_ms: z.nullable(z.number().check(z.nonnegative())),
      })).check(z.maxLength(1024)),
    ),
    /**
     * While this node's disk is full (it holds its Raft state and refuses requests): since
     * when, the storage's error, and the bytes free in its data dir (`null` when unknown).
     * `null` while it has room; absent from older nodes.
     */
    disk_full: z.optional(z.nullable(z.strictObject({
      since: z.string(),
      error: z.string().check(z.maxLength(1024)),
      free_bytes: z.nullable(z.int().check(z.nonnegative())),
    }))),
  })
);

/** `/status` as a type. */
export type StatusJson = z.infer<typeof statusSchema>;

/** Identifies a client's write so that a retry is applied once (Raft thesis §6.3). */
const clientRequest = lazySchema(() =>
  z.strictObject({
    clientId: z.string().check(z.minLength(1), z.maxLength(COMMAND_LIMITS.clientIdLengthMax)),
    sequence: z.int().check(z.minimum(1)),
  })
);

/** `cluster.status`: the answering node's `/status`. */
export const STATUS_RPC = defineRpc({
  method: "cluster.status",
  request: () => z.strictObject({}),
  response: () => statusSchema,
});

/**
 * `cluster.join`: add the caller as a learner. Answered by the leader (a follower forwards)
 * once the change is committed, with what the joiner needs to follow the cluster.
 */
export const JOIN_RPC = defineRpc({
  method: "cluster.join",
  request: () => z.strictObject({ member: memberAddressSchema }),
  response: () =>
    z.strictObject({
      clusterId: z.nullable(z.string()),
      leaderId: nodeId,
      /** The index of the entry that added the joiner. */
      index,
      members: z.array(memberAddressSchema),
    }),
});

/** `cluster.announce`: a member's addresses changed (restart with another `--bind`). */
export const ANNOUNCE_RPC = defineRpc({
  method: "cluster.announce",
  request: () => z.strictObject({ member: memberAddressSchema }),
  response: () => z.strictObject({ index }),
});

/** `cluster.remove`: remove member `nodeId` (a dead one, typically). */
export const REMOVE_RPC = defineRpc({
  method: "cluster.remove",
  request: () => z.strictObject({ nodeId, force: z.boolean() }),
  response: () => z.strictObject({ index }),
});

/** `cluster.leave`: the answering node leaves the cluster, then stops. */
export const LEAVE_RPC = defineRpc({
  method: "cluster.leave",
  request: () => z.strictObject({}),
  response: () => z.strictObject({ index }),
});

/** `kv.put`: set a key; answered after commit with the entry's index. */
export const PUT_RPC = defineRpc({
  method: "kv.put",
  request: () =>
    z.strictObject({
      key: bytes(KEY_BYTES_MAX),
      value: bytes(VALUE_BYTES_MAX),
      request: clientRequest,
    }),
  response: () => z.strictObject({ index }),
});

/** Most puts in one `kv.put_many`, and most key and value bytes in it. */
export const PUT_MANY_ITEMS_MAX = 512;
export const PUT_MANY_BYTES_MAX = 768 * 1024;

/**
 * `kv.put_many`: several independent puts in one request, each with its own session, each
 * answered on its own (a result or an error). The leader proposes them together, so they
 * share a Ready and an fsync; this is how a client with many writes in flight batches them.
 */
export const PUT_MANY_RPC = defineRpc({
  method: "kv.put_many",
  request: () =>
    z.strictObject({
      items: z.array(
        z.strictObject({
          key: bytes(KEY_BYTES_MAX),
          value: bytes(VALUE_BYTES_MAX),
          request: clientRequest,
        }),
      ).check(z.minLength(1), z.maxLength(PUT_MANY_ITEMS_MAX)),
    }),
  response: () =>
    z.strictObject({
      results: z.array(z.union([
        z.strictObject({ index }),
        z.strictObject({
          error: z.strictObject({
            code: z.string().check(z.maxLength(64)),
            message: z.string().check(z.maxLength(1024)),
          }),
        }),
      ])),
    }),
});

/** `kv.delete`: remove a key; answered after commit. */
export const DELETE_RPC = defineRpc({
  method: "kv.delete",
  request: () => z.strictObject({ key: bytes(KEY_BYTES_MAX), request: clientRequest }),
  response: () => z.strictObject({ index, existed: z.boolean() }),
});

/** `kv.compare_and_set`: set a key only if it holds `expected` (`null`: only if absent). */
export const COMPARE_AND_SET_RPC = defineRpc({
  method: "kv.compare_and_set",
  request: () =>
    z.strictObject({
      key: bytes(KEY_BYTES_MAX),
      expected: z.nullable(bytes(VALUE_BYTES_MAX)),
      value: bytes(VALUE_BYTES_MAX),
      request: clientRequest,
    }),
  response: () =>
    z.strictObject({
      index,
      succeeded: z.boolean(),
      current: z.nullable(bytes(VALUE_BYTES_MAX)),
    }),
});

/** `kv.get`: a linearizable read of one key. */
export const GET_RPC = defineRpc({
  method: "kv.get",
  request: () => z.strictObject({ key: bytes(KEY_BYTES_MAX) }),
  response: () =>
    z.strictObject({ value: z.nullable(bytes(VALUE_BYTES_MAX)), appliedIndex: index }),
});

/** `kv.list`: a linearizable read of the keys under a prefix, in byte order. */
export const LIST_RPC = defineRpc({
  method: "kv.list",
  request: () =>
    z.strictObject({
      prefix: bytes(KEY_BYTES_MAX),
      /** Continue after this key (the last of the previous page), or from the start. */
      startAfter: z.nullable(bytes(KEY_BYTES_MAX)),
      limit: z.int().check(z.minimum(1), z.maximum(LIST_LIMIT_MAX)),
    }),
  response: () =>
    z.strictObject({
      items: z.array(z.strictObject({ key: bytes(KEY_BYTES_MAX), value: bytes(VALUE_BYTES_MAX) })),
      /** More pairs follow: ask again with `startAfter` = the last key. */
      more: z.boolean(),
      appliedIndex: index,
    }),
});
