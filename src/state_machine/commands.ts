/**
 * The commands a normal log entry carries, their canonical MessagePack encoding, and the
 * strict decoding that `KvStateMachine.apply` relies on: a malformed command is reported,
 * never thrown, so that every node turns the same bad bytes into the same error result.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import {
  canonicalMemberInfo,
  type Decoded,
  type MemberInfo,
  memberInfoSchema,
} from "./member_info.ts";
import { INVITE_LIMITS, type InviteRole, tokenHashSchema } from "./invites.ts";
import {
  bytesSchema,
  decodeMessagePack,
  describeZodError,
  encodeMessagePack,
  plainBytes,
} from "./msgpack_codec.ts";

/**
 * Identifies a client's command so that a retry is not applied twice (Raft thesis §6.3).
 * A client numbers its commands 1, 2, 3, … and sends one at a time.
 */
export interface ClientRequest {
  clientId: string;
  sequence: number;
}

/** Set `key` to `value`. */
export interface PutCommand {
  type: "put";
  key: Uint8Array;
  value: Uint8Array;
  request?: ClientRequest | undefined;
}

/** Remove `key`. */
export interface DeleteCommand {
  type: "delete";
  key: Uint8Array;
  request?: ClientRequest | undefined;
}

/** Set `key` to `value` only if it holds `expected` (`null`: only if it is absent). */
export interface CompareAndSetCommand {
  type: "compareAndSet";
  key: Uint8Array;
  expected: Uint8Array | null;
  value: Uint8Array;
  request?: ClientRequest | undefined;
}

/** Names the cluster; the founding node writes it as its log's third entry. */
export interface InitClusterCommand {
  type: "initCluster";
  clusterId: string;
}

/** A member announces new addresses. */
export interface SetMemberInfoCommand {
  type: "setMemberInfo";
  info: MemberInfo;
}

/**
 * Records a new invite ticket by its token's hash. `nowMs` is the leader's wall clock when
 * it proposed the command: every node forgets old records against it, not its own clock.
 */
export interface CreateInviteCommand {
  type: "createInvite";
  tokenHash: string;
  role: InviteRole;
  expiresAtMs: number;
  uses: number;
  createdBy: string;
  nowMs: number;
}

/** Revokes the outstanding invite whose token hashes to `tokenHash`. */
export interface RevokeInviteCommand {
  type: "revokeInvite";
  tokenHash: string;
}

/** Every command a normal entry's `data` can carry. */
export type Command =
  | PutCommand
  | DeleteCommand
  | CompareAndSetCommand
  | InitClusterCommand
  | SetMemberInfoCommand
  | CreateInviteCommand
  | RevokeInviteCommand;

/** The commands that read or write keys. */
export type KvCommand = PutCommand | DeleteCommand | CompareAndSetCommand;

/** Limits on a command: it is replicated to every node and written to every log. */
export const COMMAND_LIMITS = {
  keyBytesMax: 4096,
  valueBytesMax: 1024 * 1024,
  clientIdLengthMax: 128,
  clusterIdLengthMax: 128,
  /** Room for the largest compareAndSet: two values, a key and a request. */
  commandBytesMax: 2 * 1024 * 1024 + 4096 + 1024,
} as const;

/** Raised by `encodeCommand` for a command that `decodeCommand` would refuse. */
export class InvalidCommandError extends Error {
  override name = "InvalidCommandError";
}

/** Built on the first command encoded or decoded (`lazySchema`), with its parts. */
const commandSchema = lazySchema(() => {
  const keySchema = bytesSchema(COMMAND_LIMITS.keyBytesMax);
  const valueSchema = bytesSchema(COMMAND_LIMITS.valueBytesMax);
  const requestSchema = z.optional(z.strictObject({
    clientId: z.string().check(z.minLength(1), z.maxLength(COMMAND_LIMITS.clientIdLengthMax)),
    sequence: z.int().check(z.minimum(1)),
  }));
  return z.discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("put"),
      key: keySchema,
      value: valueSchema,
      request: requestSchema,
    }),
    z.strictObject({
      type: z.literal("delete"),
      key: keySchema,
      request: requestSchema,
    }),
    z.strictObject({
      type: z.literal("compareAndSet"),
      key: keySchema,
      expected: z.nullable(valueSchema),
      value: valueSchema,
      request: requestSchema,
    }),
    z.strictObject({
      type: z.literal("initCluster"),
      clusterId: z.string().check(
        z.minLength(1),
        z.maxLength(COMMAND_LIMITS.clusterIdLengthMax),
      ),
    }),
    z.strictObject({ type: z.literal("setMemberInfo"), info: memberInfoSchema }),
    z.strictObject({
      type: z.literal("createInvite"),
      tokenHash: tokenHashSchema,
      role: z.enum(["voter", "learner"]),
      expiresAtMs: z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER)),
      uses: z.int().check(z.minimum(1), z.maximum(INVITE_LIMITS.usesMax)),
      createdBy: z.string().check(z.maxLength(INVITE_LIMITS.createdByLengthMax)),
      nowMs: z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER)),
    }),
    z.strictObject({ type: z.literal("revokeInvite"), tokenHash: tokenHashSchema }),
  ]);
});

/**
 * The canonical MessagePack encoding of `command`: fields in a fixed order, `request` left
 * out when absent. Throws `InvalidCommandError` when the command breaks a limit, so that a
 * bad command is refused before it is proposed.
 */
export function encodeCommand(command: Command): Uint8Array {
  const canonical = canonicalCommand(command);
  const parsed = commandSchema.safeParse(canonical);
  if (!parsed.success) {
    throw new InvalidCommandError(`${command.type} command ${describeZodError(parsed.error)}`);
  }
  return encodeMessagePack(canonical);
}

/** Decodes and validates a normal entry's data; never throws. */
export function decodeCommand(bytes: Uint8Array): Decoded<Command> {
  if (bytes.length > COMMAND_LIMITS.commandBytesMax) {
    return {
      ok: false,
      error: `command of ${bytes.length} bytes exceeds ${COMMAND_LIMITS.commandBytesMax}`,
    };
  }
  let value: unknown;
  try {
    value = decodeMessagePack(bytes);
  } catch (error) {
    return { ok: false, error: `command is not MessagePack: ${(error as Error).message}` };
  }
  const parsed = commandSchema.safeParse(value);
  if (!parsed.success) return { ok: false, error: `command ${describeZodError(parsed.error)}` };
  return { ok: true, value: withPlainBytes(parsed.data) };
}

/** `command` with its binary fields copied out of the decoder's buffer. */
function withPlainBytes(command: Command): Command {
  switch (command.type) {
    case "put":
      return { ...command, key: plainBytes(command.key), value: plainBytes(command.value) };
    case "delete":
      return { ...command, key: plainBytes(command.key) };
    case "compareAndSet": {
      const expected = command.expected === null ? null : plainBytes(command.expected);
      return {
        ...command,
        key: plainBytes(command.key),
        expected,
        value: plainBytes(command.value),
      };
    }
    case "initCluster":
    case "setMemberInfo":
    case "createInvite":
    case "revokeInvite":
      return command;
  }
}

function canonicalCommand(command: Command): Record<string, unknown> {
  switch (command.type) {
    case "put":
      return withRequest(
        { type: command.type, key: command.key, value: command.value },
        command.request,
      );
    case "delete":
      return withRequest({ type: command.type, key: command.key }, command.request);
    case "compareAndSet":
      return withRequest(
        { type: command.type, key: command.key, expected: command.expected, value: command.value },
        command.request,
      );
    case "initCluster":
      return { type: command.type, clusterId: command.clusterId };
    case "setMemberInfo":
      return { type: command.type, info: canonicalMemberInfo(command.info) };
    case "createInvite":
      return {
        type: command.type,
        tokenHash: command.tokenHash,
        role: command.role,
        expiresAtMs: command.expiresAtMs,
        uses: command.uses,
        createdBy: command.createdBy,
        nowMs: command.nowMs,
      };
    case "revokeInvite":
      return { type: command.type, tokenHash: command.tokenHash };
  }
}

function withRequest(
  fields: Record<string, unknown>,
  request: ClientRequest | undefined,
): Record<string, unknown> {
  if (request === undefined) return fields;
  return { ...fields, request: { clientId: request.clientId, sequence: request.sequence } };
}
