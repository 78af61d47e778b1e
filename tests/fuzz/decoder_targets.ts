/**
 * Fuzzing of every decoder that reads what another machine sent, with fast-check: the
 * `/bootstrap` JSON as a joiner reads it (parse, then signature check), the TXT records of a
 * `dns:` peer, invite tickets (`--join TICKET`), the frame codec,
 * every RPC request and response schema, Raft messages, state images (snapshots) and
 * commands (log entries).
 *
 * Each case must end in a value or the decoder's own error class (`BootstrapError`,
 * `FrameError`, `RaftMessageError`, `StateImageError`, a zod failure, a `Decoded` error):
 * anything else thrown is a crash. A case that takes longer than `CASE_MS_MAX` is a hang,
 * and a target whose cases together grow the heap by more than `HEAP_GROWTH_BYTES_MAX` is
 * allocating without bound. Inputs are random bytes, random values, and valid encodings
 * with bytes changed, cut or appended, so that cases get past the first check.
 *
 * The suite runs 1,000 cases per target (`decoders_fuzz_test.ts`); `deno task chaos
 * --fuzz` runs 100,000.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import fc from "fast-check";
import { z } from "zod";
import { ClusterSecret } from "../../src/auth/cluster_secret.ts";
import { AUTHENTICATE_RPC, CHALLENGE_RPC } from "../../src/auth/auth_rpcs.ts";
import { BootstrapError } from "../../src/bootstrap/bootstrap_error.ts";
import { parseBootstrapInfo } from "../../src/bootstrap/bootstrap_info.ts";
import {
  decodeInviteTicket,
  encodeInviteTicket,
  InviteTicketError,
  sealTicketBody,
} from "../../src/bootstrap/invite_ticket.ts";
import { parsePeerEntry, resolvePeerEntry } from "../../src/bootstrap/peer_source.ts";
import {
  signBootstrapInfo,
  verifyBootstrapSignature,
} from "../../src/bootstrap/bootstrap_signature.ts";
import { commandArbitrary } from "../../src/state_machine/arbitraries.ts";
import { decodeCommand, encodeCommand } from "../../src/state_machine/commands.ts";
import { encodeMessagePack } from "../../src/state_machine/msgpack_codec.ts";
import {
  decodeStateImage,
  STATE_IMAGE_FORMAT,
  StateImageError,
} from "../../src/state_machine/state_image.ts";
import * as clusterRpcs from "../../src/transport/cluster_rpcs.ts";
import * as inviteRpcs from "../../src/transport/invite_rpcs.ts";
import { encodeFrames, FrameDecoder, FrameError } from "../../src/transport/frame_codec.ts";
import { SecretKey } from "../../src/transport/iroh.ts";
import { PING_RPC } from "../../src/transport/ping_rpc.ts";
import { parseRaftMessage, RaftMessageError } from "../../src/transport/raft_message_schema.ts";
import type { RpcDefinition } from "../../src/transport/rpc.ts";

/** A case slower than this is a hang. */
export const CASE_MS_MAX = 2_000;
/** Heap growth over one target's cases beyond this is unbounded allocation. */
export const HEAP_GROWTH_BYTES_MAX = 256 * 1024 * 1024;
/** Largest random input: big enough for every structure, small enough to stay fast. */
const INPUT_BYTES_MAX = 4_096;
/** Frame limit of the fuzzed decoder: small, so announced lengths above it are common. */
const FUZZ_FRAME_BYTES_MAX = 2_048;

const encoder = new TextEncoder();

/** The outcome of one target. */
export interface FuzzResult {
  target: string;
  runs: number;
  /** `null` when every case ended in a value or a clear error. */
  failure: string | null;
  durationMs: number;
}

/** One decoder under fuzz: an input arbitrary and a check of one case. */
export interface FuzzTarget<Input> {
  name: string;
  input: fc.Arbitrary<Input>;
  /** Decodes; throws only when the outcome is neither a value nor the decoder's error. */
  decode(input: Input): void | Promise<void>;
}

/** Random values of the shapes a decoder meets, including typed arrays and odd numbers. */
const anyValue: fc.Arbitrary<unknown> = fc.anything({
  maxDepth: 3,
  maxKeys: 6,
  withBigInt: true,
  withTypedArray: true,
  withNullPrototype: true,
  withMap: true,
  withSet: true,
  withDate: true,
});

/** Small numbers and strings that pass or nearly pass the usual field checks. */
const nearValid: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -2, max: 10 }),
  fc.constantFrom(0, 1, 2 ** 31, 2 ** 53, -1, 1.5, Number.NaN, Infinity),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 8 }),
  fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }),
);

/** Objects with the fields `keys` (some missing, some extra), holding near-valid values. */
function shapedObject(keys: readonly string[]): fc.Arbitrary<unknown> {
  if (keys.length === 0) return anyValue;
  return fc.dictionary(
    fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...keys) }, {
      weight: 1,
      arbitrary: fc.string({ maxLength: 6 }),
    }),
    fc.oneof({ weight: 3, arbitrary: nearValid }, { weight: 1, arbitrary: anyValue }),
    { maxKeys: keys.length + 1 },
  );
}

/** `seeds` with bytes changed, cut short or extended: inputs that get past the first checks. */
function mutatedBytes(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.record({
    seed: fc.constantFrom(...seeds),
    edits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), {
      maxLength: 4,
    }),
    cutAt: fc.option(fc.nat()),
    tail: fc.uint8Array({ maxLength: 16 }),
  }).map(({ seed, edits, cutAt, tail }) => {
    const bytes = new Uint8Array([...seed, ...tail]);
    for (const { at, byte } of edits) if (bytes.length > 0) bytes[at % bytes.length] = byte;
    return cutAt === null ? bytes : bytes.subarray(0, cutAt % (bytes.length + 1));
  });
}

/** Random bytes, msgpack of random values, and mutations of `seeds`. */
function bytesInput(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: INPUT_BYTES_MAX }),
    anyValue.map((value) => safeMessagePack(value)),
    mutatedBytes(seeds),
  );
}

function safeMessagePack(value: unknown): Uint8Array {
  try {
    return encodeMessagePack(value);
  } catch {
    return new Uint8Array([0xc1]); // Never used by msgpack: the decoder must refuse it.
  }
}

/** Passes when `error` is an instance of `expected`; otherwise rethrows it (a crash). */
function expectError(error: unknown, expected: new (...args: never[]) => Error): void {
  if (error instanceof expected && error.message.length > 0 && !error.message.includes("\n")) {
    return;
  }
  throw error;
}

const P2P_NODE_ID = SecretKey.generate().public().toString();
const VALID_BOOTSTRAP = {
  node_id: 1,
  p2p_node_id: P2P_NODE_ID,
  p2p_addresses: ["127.0.0.1:7001"],
  p2p_relay_url: null,
  cluster_id: "c0ffee",
  leader_id: 1,
};

async function bootstrapTarget(): Promise<FuzzTarget<string>> {
  const secret = await ClusterSecret.fromBytes(encoder.encode("fuzz secret 0123456789abcdef"));
  const signed = await signBootstrapInfo(
    parseBootstrapInfo(JSON.stringify(VALID_BOOTSTRAP), "fuzz"),
    secret,
  );
  const seeds = [JSON.stringify(VALID_BOOTSTRAP), JSON.stringify(signed)].map((text) =>
    encoder.encode(text)
  );
  const textDecoder = new TextDecoder();
  return {
    name: "/bootstrap JSON",
    input: fc.oneof(
      fc.string({ maxLength: INPUT_BYTES_MAX }),
      fc.json({ maxDepth: 3 }),
      shapedObject([...Object.keys(VALID_BOOTSTRAP), "signature"]).map((value) =>
        JSON.stringify(value, (_key, field) => typeof field === "bigint" ? Number(field) : field) ??
          "null"
      ),
      mutatedBytes(seeds).map((bytes) => textDecoder.decode(bytes)),
    ),
    decode: async (body) => {
      try {
        const info = parseBootstrapInfo(body, "fuzz");
        await verifyBootstrapSignature(info, { secret, peer: "fuzz" });
      } catch (error) {
        expectError(error, BootstrapError);
      }
    },
  };
}

/** TXT records of a `dns:NAME` peer, as a resolver might return them. */
function dnsTxtTarget(): FuzzTarget<string[][]> {
  const entry = parsePeerEntry("dns:seeds.example");
  const recordText = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.constantFrom("127.0.0.1:7001", "http://127.0.0.1:8001/bootstrap", "[::1]:7001"),
    fc.webUrl(),
  );
  return {
    name: "DNS TXT records",
    input: fc.array(fc.array(recordText, { maxLength: 4 }), { maxLength: 40 }),
    decode: async (records) => {
      try {
        const sources = await resolvePeerEntry(entry, {
          resolveTxt: () => Promise.resolve(records),
        });
        if (sources.length > records.length) throw new Error("more sources than records");
      } catch (error) {
        expectError(error, BootstrapError);
      }
    },
  };
}

function frameTarget(): FuzzTarget<{ bytes: Uint8Array; cuts: number[] }> {
  const seeds = [
    encodeFrames([{ type: "rpc_request", method: "kv.get", body: { key: new Uint8Array(3) } }]),
    encodeFrames([1, "two", [3], { four: 4 }]),
  ];
  return {
    name: "frame codec",
    input: fc.record({
      bytes: bytesInput(seeds),
      cuts: fc.array(fc.nat({ max: INPUT_BYTES_MAX }), { maxLength: 4 }),
    }),
    decode: ({ bytes, cuts }) => {
      const decoder = new FrameDecoder({ frameBytesMax: FUZZ_FRAME_BYTES_MAX });
      try {
        let start = 0;
        for (const cut of [...cuts.map((at) => at % (bytes.length + 1))].sort((a, b) => a - b)) {
          decoder.push(bytes.subarray(start, Math.max(start, cut)));
          start = Math.max(start, cut);
        }
        decoder.push(bytes.subarray(start));
        decoder.finish();
      } catch (error) {
        expectError(error, FrameError);
      }
      if (decoder.bufferedBytes > FUZZ_FRAME_BYTES_MAX + 4) {
        throw new Error(`the decoder holds ${decoder.bufferedBytes} bytes, beyond one frame`);
      }
    },
  };
}

/** Every RPC the nodes serve. */
function rpcDefinitions(): RpcDefinition[] {
  const definitions: RpcDefinition[] = [PING_RPC, CHALLENGE_RPC, AUTHENTICATE_RPC];
  for (const value of [...Object.values(clusterRpcs), ...Object.values(inviteRpcs)]) {
    if (typeof value === "object" && value !== null && "method" in value && "request" in value) {
      definitions.push(value as RpcDefinition);
    }
  }
  return definitions;
}

function schemaKeys(schema: unknown): string[] {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  return shape === undefined ? [] : Object.keys(shape);
}

function rpcTarget(definition: RpcDefinition, side: "request" | "response"): FuzzTarget<unknown> {
  const schema = definition[side];
  return {
    name: `rpc ${definition.method} ${side}`,
    input: fc.oneof(anyValue, shapedObject(schemaKeys(schema))),
    decode: (value) => {
      const result = z.safeParse(schema, value);
      if (!result.success && result.error.issues.length === 0) {
        throw new Error("a refusal without an issue to name");
      }
    },
  };
}

const RAFT_SEEDS: unknown[] = [
  {
    type: "AppendEntries",
    term: 3,
    from: 1,
    to: 2,
    prevLogIndex: 4,
    prevLogTerm: 2,
    leaderCommit: 4,
    entries: [{ type: "normal", term: 3, index: 5, data: new Uint8Array([1, 2, 3]) }],
  },
  {
    type: "InstallSnapshot",
    term: 3,
    from: 1,
    to: 2,
    snapshot: {
      metadata: { index: 10, term: 2, confState: { voters: [1, 2], learners: [3] } },
      data: new Uint8Array([7, 7]),
    },
  },
  { type: "Heartbeat", term: 3, from: 1, to: 2, commit: 9, readContext: 0 },
];

function raftTarget(): FuzzTarget<unknown> {
  const keys = [...new Set(RAFT_SEEDS.flatMap((seed) => Object.keys(seed as object)))];
  return {
    name: "raft message",
    input: fc.oneof(
      anyValue,
      shapedObject(keys),
      // Mutated encodings of valid messages, decoded as the transport does; what the
      // codec itself refuses is the frame target's business.
      mutatedBytes(RAFT_SEEDS.map((seed) => encodeMessagePack(seed))).map((bytes) => {
        try {
          return new FrameDecoder().push(encodeFramed(bytes))[0];
        } catch {
          return bytes;
        }
      }),
    ),
    decode: (value) => {
      try {
        parseRaftMessage(value);
      } catch (error) {
        expectError(error, RaftMessageError);
      }
    },
  };
}

/** `payload` as one frame, for decoding through the codec like the transport does. */
function encodeFramed(payload: Uint8Array): Uint8Array {
  const framed = new Uint8Array(4 + payload.length);
  new DataView(framed.buffer).setUint32(0, payload.length, false);
  framed.set(payload, 4);
  return payload.length === 0 ? new Uint8Array() : framed;
}

function stateImageTarget(): FuzzTarget<Uint8Array> {
  const image = [
    STATE_IMAGE_FORMAT,
    12,
    [1, 2],
    [3],
    "c0ffee",
    [],
    [encoder.encode("key"), encoder.encode("value")],
    [["client", 1, 7, { type: "put", index: 7 }]],
  ];
  return {
    name: "state image",
    input: bytesInput([encodeMessagePack(image)]),
    decode: (bytes) => {
      try {
        decodeStateImage(bytes);
      } catch (error) {
        expectError(error, StateImageError);
      }
    },
  };
}

/**
 * Invite tickets as an operator pastes them: random text, and tickets whose body was
 * changed and sealed again with a matching checksum, so that cases reach the field checks.
 */
function inviteTicketTarget(): FuzzTarget<string> {
  const valid = encodeInviteTicket({
    clusterId: "c0ffee",
    expiresAtMs: 1_700_000_000_000,
    token: new Uint8Array(32),
    members: [{
      nodeId: 1,
      p2pNodeId: P2P_NODE_ID,
      addresses: ["127.0.0.1:7001"],
      relayUrl: null,
    }],
  });
  const body = new Uint8Array(Buffer.from(valid.slice(4), "base64url")).subarray(0, -4);
  return {
    name: "invite ticket",
    input: fc.oneof(
      fc.string({ maxLength: 600 }),
      fc.string({ maxLength: 600 }).map((text) => `blx1${text}`),
      mutatedBytes([body]).map(sealTicketBody),
      anyValue.map((value) => sealTicketBody(safeMessagePack(value))),
    ),
    decode: (text) => {
      try {
        decodeInviteTicket(text);
      } catch (error) {
        expectError(error, InviteTicketError);
      }
    },
  };
}

function commandTarget(): FuzzTarget<Uint8Array> {
  const seeds = fc.sample(commandArbitrary(), { numRuns: 8, seed: 1 }).map(encodeCommand);
  return {
    name: "command (log entry)",
    input: bytesInput(seeds),
    decode: (bytes) => {
      const decoded = decodeCommand(bytes);
      if (!decoded.ok && decoded.error.length === 0) throw new Error("an error without a text");
    },
  };
}

/** Every target, built once. */
export async function fuzzTargets(): Promise<FuzzTarget<never>[]> {
  const targets: FuzzTarget<never>[] = [
    await bootstrapTarget() as FuzzTarget<never>,
    dnsTxtTarget() as FuzzTarget<never>,
    inviteTicketTarget() as FuzzTarget<never>,
    frameTarget() as FuzzTarget<never>,
    raftTarget() as FuzzTarget<never>,
    stateImageTarget() as FuzzTarget<never>,
    commandTarget() as FuzzTarget<never>,
  ];
  for (const definition of rpcDefinitions()) {
    targets.push(rpcTarget(definition, "request") as FuzzTarget<never>);
    targets.push(rpcTarget(definition, "response") as FuzzTarget<never>);
  }
  return targets;
}

/** Runs `numRuns` cases of `target`; the result names the first failing case, shrunk. */
export async function runFuzzTarget<Input>(
  target: FuzzTarget<Input>,
  options: { numRuns: number; seed?: number },
): Promise<FuzzResult> {
  const startedMs = performance.now();
  const heapBefore = Deno.memoryUsage().heapUsed;
  const property = fc.asyncProperty(target.input, async (input) => {
    const caseStartMs = performance.now();
    await target.decode(input);
    const caseMs = performance.now() - caseStartMs;
    if (caseMs > CASE_MS_MAX) throw new Error(`one case took ${Math.round(caseMs)} ms`);
  });
  const details = await fc.check(property, {
    numRuns: options.numRuns,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  });
  const heapGrowth = Deno.memoryUsage().heapUsed - heapBefore;
  let failure: string | null = null;
  if (details.failed) {
    failure = `seed ${details.seed}, path ${details.counterexamplePath}: ${
      String(details.errorInstance ?? "failed")
    } on ${fc.stringify(details.counterexample)}`.slice(0, 2_000);
  } else if (heapGrowth > HEAP_GROWTH_BYTES_MAX) {
    failure = `the heap grew by ${Math.round(heapGrowth / 2 ** 20)} MiB`;
  }
  return {
    target: target.name,
    runs: details.numRuns,
    failure,
    durationMs: performance.now() - startedMs,
  };
}

/** Runs every target (or those whose name contains `only`) with `numRuns` cases each. */
export async function runFuzzTargets(
  options: { numRuns: number; only?: string },
): Promise<FuzzResult[]> {
  const results: FuzzResult[] = [];
  for (const target of await fuzzTargets()) {
    if (options.only !== undefined && !target.name.includes(options.only)) continue;
    results.push(await runFuzzTarget(target, options));
  }
  return results;
}
