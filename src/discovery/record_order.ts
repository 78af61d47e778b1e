/**
 * The order of resource records that RFC 6762 §8.2 uses to break a tie between two hosts
 * that probe for the same name at once: compare the class (without the cache-flush bit),
 * then the type, then the raw uncompressed rdata byte by byte; a prefix is earlier. For
 * sets (§8.2.1), each side sorts its records and they are compared pairwise; the first
 * difference decides, and a side whose records run out first is earlier. The
 * lexicographically later side wins; identical sets are no conflict.
 *
 * `multicast-dns` decodes and encodes packets but offers no rdata bytes for one record,
 * so the rdata of the types Blixard advertises (A, PTR, SRV, TXT) is laid out here as on
 * the wire; any other type is compared by a stable encoding of its decoded data, which
 * keeps the order total (both sides of a Blixard tie use only the four types).
 *
 * @module
 */

import { compareBytes } from "../state_machine/byte_keys.ts";
import type { DnsRecord } from "./multicast_socket.ts";

const TYPE_CODES: Record<string, number> = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 };
/** The class IN; `multicast-dns` leaves it implicit. */
const CLASS_IN = 1;
const CLASS_CODES: Record<string, number> = { IN: CLASS_IN, CS: 2, CH: 3, HS: 4, ANY: 255 };
const encoder = new TextEncoder();

/**
 * Compares two sets of records by RFC 6762 §8.2.1: negative when `ours` is
 * lexicographically earlier (it loses), positive when later (it wins), 0 when identical.
 */
export function compareRecordSets(
  ours: readonly DnsRecord[],
  theirs: readonly DnsRecord[],
): number {
  const sortedOurs = ours.map(recordBytes).sort(compareBytes);
  const sortedTheirs = theirs.map(recordBytes).sort(compareBytes);
  const shared = Math.min(sortedOurs.length, sortedTheirs.length);
  for (let i = 0; i < shared; i++) {
    const order = compareBytes(sortedOurs[i]!, sortedTheirs[i]!);
    if (order !== 0) return order;
  }
  return sortedOurs.length - sortedTheirs.length;
}

/** Class (u16), type (u16), then the rdata: the bytes the comparison runs over. */
function recordBytes(record: DnsRecord): Uint8Array {
  const rdata = rdataBytes(record);
  const bytes = new Uint8Array(4 + rdata.length);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, CLASS_CODES[record.class ?? "IN"] ?? 0xffff);
  view.setUint16(2, TYPE_CODES[record.type] ?? 0xffff);
  bytes.set(rdata, 4);
  return bytes;
}

/** The uncompressed rdata of `record` as on the wire. */
export function rdataBytes(record: DnsRecord): Uint8Array {
  const data = record.data;
  switch (record.type) {
    case "A":
      return Uint8Array.from(String(data).split(".").map((part) => Number(part) & 0xff));
    case "PTR":
      return nameBytes(String(data));
    case "SRV": {
      const target = nameBytes(String(data?.target ?? ""));
      const bytes = new Uint8Array(6 + target.length);
      const view = new DataView(bytes.buffer);
      view.setUint16(0, Number(data?.priority ?? 0));
      view.setUint16(2, Number(data?.weight ?? 0));
      view.setUint16(4, Number(data?.port ?? 0));
      bytes.set(target, 6);
      return bytes;
    }
    case "TXT":
      return txtBytes(data);
    default:
      return encoder.encode(JSON.stringify(data ?? null));
  }
}

/** A domain name as labels (length, bytes), ending with the root label. */
function nameBytes(name: string): Uint8Array {
  const labels = name.split(".").filter((label) => label.length > 0).map((label) =>
    encoder.encode(label).subarray(0, 63)
  );
  return Uint8Array.from([...lengthPrefixed(labels), 0]);
}

/** TXT rdata: each string with its length byte; none is one empty string (RFC 6763 §6.1). */
function txtBytes(data: unknown): Uint8Array {
  const parts = (Array.isArray(data) ? data : [data ?? ""]).map((part: unknown) =>
    (typeof part === "string"
      ? encoder.encode(part)
      : part instanceof Uint8Array
      ? part
      : new Uint8Array(0))
      .subarray(0, 255)
  );
  if (parts.length === 0) return Uint8Array.of(0);
  return Uint8Array.from(lengthPrefixed(parts));
}

/** Each part after its length byte. */
function lengthPrefixed(parts: Uint8Array[]): number[] {
  return parts.flatMap((part) => [part.length, ...part]);
}
