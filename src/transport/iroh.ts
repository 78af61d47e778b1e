/**
 * The one place that uses `@number0/iroh`, the napi binding of iroh 1.0 (loaded by
 * `iroh_addon.ts`). Everything else in Blixard reaches Iroh through this module, so that a
 * change of binding is a change of one file.
 *
 * Two facts about the binding shape the code around it: bytes cross as `number[]` (each
 * call costs about 0.25 ms, so callers batch), and errors arrive as `anyhow` reports whose
 * message holds a chain of causes with source locations and, when `RUST_BACKTRACE` is set,
 * a whole backtrace. `describeIrohError` reduces such a report to the one line that says
 * what went wrong.
 *
 * @module
 */

import type * as IrohTypes from "../../node_modules/@number0/iroh/index.d.ts";
import { loadIrohBinding } from "./iroh_addon.ts";

const iroh = loadIrohBinding();

/** The classes and presets of the binding that Blixard uses. */
export const { Endpoint, EndpointAddr, EndpointId, RelayMode, SecretKey, presetMinimal } = iroh;

/** A bound Iroh endpoint (the binding's `Endpoint` instance). */
export type IrohEndpoint = IrohTypes.Endpoint;
/** An established Iroh connection. */
export type IrohConnection = IrohTypes.Connection;
/** A server-side connection attempt before its handshake. */
export type IrohIncoming = IrohTypes.Incoming;
/** A bidirectional QUIC stream: its `send` and `recv` halves. */
export type IrohBiStream = IrohTypes.BiStream;
/** The send half of a QUIC stream. */
export type IrohSendStream = IrohTypes.SendStream;
/** The receive half of a QUIC stream. */
export type IrohRecvStream = IrohTypes.RecvStream;

/**
 * Bytes as the binding takes them: a plain array of numbers. A loop into a preallocated
 * array is several times faster than `Array.from(bytes)` (measured: 72 ms against 500 ms
 * for 4 MiB), which matters because every frame crosses this way.
 */
export function toBindingBytes(bytes: Uint8Array): number[] {
  const array = new Array<number>(bytes.length);
  for (let index = 0; index < bytes.length; index++) array[index] = bytes[index]!;
  return array;
}

/**
 * Bytes from the binding as a `Uint8Array`. A loop, not `new Uint8Array(array)`: the
 * binding builds its arrays element by element, which leaves them with generic (not small
 * integer) elements, and the constructor's path for those costs 60–400 ns per byte here
 * against 1–20 for the loop (measured with `scripts/bench_binding.ts`, docs/benchmarks.md).
 */
export function fromBindingBytes(array: number[]): Uint8Array {
  const bytes = new Uint8Array(array.length);
  for (let index = 0; index < array.length; index++) bytes[index] = array[index]!;
  return bytes;
}

/** Length of an endpoint id in the canonical text form: 32 bytes as lowercase hex. */
export const ENDPOINT_ID_CHARS = 64;

/**
 * Whether `text` is an Iroh endpoint id in canonical form: 64 lowercase hex characters
 * that decode to an ed25519 public key (about half of all 32-byte strings are not one).
 */
export function isValidEndpointId(text: string): boolean {
  if (text.length !== ENDPOINT_ID_CHARS || !/^[0-9a-f]+$/.test(text)) return false;
  try {
    EndpointId.fromString(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The innermost cause of an error from the binding, on one line and without source
 * locations or backtrace: `"invalid peer certificate: UnknownIssuer"` rather than twenty
 * lines starting with `ConnectError::Connecting (/root/.cargo/…)`.
 */
export function describeIrohError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const report = message.split("Stack backtrace:")[0] ?? "";
  const lines = report.split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && line !== "Caused by:");
  const innermost = lines.at(-1) ?? "unknown error";
  // Drop the `(path/to/file.rs:12:34)` location that anyhow appends to context lines.
  return innermost.replace(/\s*\([^()]*\.rs:\d+:\d+\)$/, "");
}
