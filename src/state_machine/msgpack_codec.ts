/**
 * The one MessagePack configuration the state machine encodes with. Commands, member
 * records and snapshot images must encode to the same bytes on every node, so there is a
 * single `Packr` with fixed options, and callers build values with a fixed key order.
 *
 * @module
 */

import { Packr } from "msgpackr";
import { z } from "../util/zod_mini.ts";

// Plain maps, no record extension: the record extension makes an encoding depend on what
// was encoded before, and other implementations cannot read it.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/** MessagePack bytes of `value`, in a buffer of their own. */
export function encodeMessagePack(value: unknown): Uint8Array {
  // `pack` returns a view into a buffer it reuses for the next call: copy it out.
  return new Uint8Array(packr.pack(value));
}

/** The value encoded in `bytes`; throws on bytes that are not one MessagePack value. */
export function decodeMessagePack(bytes: Uint8Array): unknown {
  // msgpackr caches a `dataView` property on the buffer it reads: give it a view of our own
  // (no copy) so that the caller's array, an entry's data for instance, stays untouched.
  return packr.unpack(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/**
 * Accepts binary data of at most `lengthMax` bytes. msgpackr decodes binary to Buffers
 * that share the input's memory: decoders pass what they keep through `plainBytes`.
 */
export function bytesSchema(lengthMax: number) {
  // z.custom without a transform: a third of the cost of instanceof().refine().transform()
  // on the apply path, where every command is decoded.
  return z.custom<Uint8Array>(
    (value) => value instanceof Uint8Array && value.length <= lengthMax,
    { message: `expected binary data of at most ${lengthMax} bytes` },
  );
}

/** A copy of `bytes` as a plain `Uint8Array` (not a Buffer, not sharing memory). */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** One line naming the first problem zod found, e.g. `key: longer than 4096 bytes`. */
export function describeZodError(error: z.core.$ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  const path = issue.path.map(String).join(".");
  return path === "" ? issue.message : `${path}: ${issue.message}`;
}
