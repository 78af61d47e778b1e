/**
 * `Advert`: what a node says about itself in the TXT record of its DNS-SD service
 * `_blixard._udp.local` (RFC 6763 §6), and the strict decoder that turns a TXT record from
 * the network into one.
 *
 * The TXT strings, in this order:
 *
 * | key       | value                                                                |
 * | --------- | -------------------------------------------------------------------- |
 * | `v`       | `1`, the schema version                                              |
 * | `cluster` | the cluster id; empty while the node belongs to none                 |
 * | `node`    | the node id                                                          |
 * | `p2p`     | the 64-hex Iroh endpoint id                                          |
 * | `addrs`   | comma-separated P2P addresses (`ip:port`, `[v6]:port`)               |
 * | `http`    | the HTTP port (`/bootstrap`, `/status`)                              |
 * | `t`       | with a cluster secret: when the signature was made (Unix ms)         |
 * | `sig`     | with a cluster secret: the signature (`advert_signature.ts`)         |
 *
 * Every record is hostile input: the decoder checks sizes before it reads, refuses
 * duplicate keys and anything that does not validate as a `/bootstrap` answer would
 * (the same schema checks the P2P id and addresses), and ignores unknown keys so that a
 * later version may add some (RFC 6763 §6.4).
 *
 * @module
 */

import { BootstrapInfoSchema, P2P_ADDRESSES_MAX } from "../bootstrap/bootstrap_info.ts";

/** The schema version this code writes and reads. */
export const ADVERT_VERSION = "1";
/** A DNS character-string holds at most 255 bytes (RFC 1035 §3.3). */
export const TXT_STRING_BYTES_MAX = 255;
/** Most strings read from one TXT record: ours has 8; the rest leaves room for new keys. */
export const TXT_STRINGS_MAX = 16;
/** Most bytes read from one TXT record, all strings together. */
export const TXT_RECORD_BYTES_MAX = 1300;
/** Longest cluster id accepted, as in `/bootstrap`. */
const CLUSTER_ID_CHARS_MAX = 128;

/** What a node advertises, validated. */
export interface Advert {
  readonly nodeId: number;
  /** `null` while the node belongs to no cluster. */
  readonly clusterId: string | null;
  readonly p2pNodeId: string;
  /** Canonical `ip:port` forms. */
  readonly addresses: readonly string[];
  readonly httpPort: number;
  /** Unix ms of the signature, or `null` when unsigned. */
  readonly issuedAtMs: number | null;
  /** Lowercase hex HMAC, or `null` when unsigned. */
  readonly signature: string | null;
}

/** Why a TXT record could not be read as an `Advert`. */
export type AdvertRejection = "oversized" | "malformed";

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The TXT strings of `advert`. Addresses that would overflow the 255-byte string are left
 * out (a peer needs one that works, not all of them).
 */
export function encodeAdvert(advert: Advert): string[] {
  const strings = [
    `v=${ADVERT_VERSION}`,
    `cluster=${advert.clusterId ?? ""}`,
    `node=${advert.nodeId}`,
    `p2p=${advert.p2pNodeId}`,
    `addrs=${addressesThatFit(advert.addresses).join(",")}`,
    `http=${advert.httpPort}`,
  ];
  if (advert.issuedAtMs !== null && advert.signature !== null) {
    strings.push(`t=${advert.issuedAtMs}`, `sig=${advert.signature}`);
  }
  return strings;
}

/** The addresses of `addresses` that fit in one `addrs=` string, in order. */
export function addressesThatFit(addresses: readonly string[]): string[] {
  const kept: string[] = [];
  let bytes = "addrs=".length;
  for (const address of addresses.slice(0, P2P_ADDRESSES_MAX)) {
    const added = address.length + (kept.length === 0 ? 0 : 1);
    if (bytes + added > TXT_STRING_BYTES_MAX) break;
    kept.push(address);
    bytes += added;
  }
  return kept;
}

/** Reads a TXT record (its strings as received) as an `Advert`, or says why not. */
export function decodeAdvert(
  strings: readonly Uint8Array[],
): { advert: Advert } | { rejected: AdvertRejection; detail: string } {
  const malformed = (detail: string) => ({ rejected: "malformed" as const, detail });
  const totalBytes = strings.reduce((sum, string) => sum + string.length, 0);
  if (strings.length > TXT_STRINGS_MAX || totalBytes > TXT_RECORD_BYTES_MAX) {
    return {
      rejected: "oversized",
      detail: `${strings.length} strings, ${totalBytes} bytes (limits ${TXT_STRINGS_MAX}, ` +
        `${TXT_RECORD_BYTES_MAX})`,
    };
  }
  const fields = new Map<string, string>();
  for (const bytes of strings) {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return malformed("a TXT string is not UTF-8");
    }
    const equals = text.indexOf("=");
    // RFC 6763 §6.4: a string without '=' is a boolean attribute; ours has none.
    const key = (equals < 0 ? text : text.slice(0, equals)).toLowerCase();
    if (fields.has(key)) return malformed(`key ${JSON.stringify(key.slice(0, 32))} repeated`);
    fields.set(key, equals < 0 ? "" : text.slice(equals + 1));
  }
  if (fields.get("v") !== ADVERT_VERSION) return malformed("v is not 1");
  return parseFields(fields) ?? malformed("a field is missing or invalid");
}

function parseFields(fields: Map<string, string>): { advert: Advert } | null {
  const clusterId = fields.get("cluster");
  const nodeText = fields.get("node") ?? "";
  const httpText = fields.get("http") ?? "";
  const addrsText = fields.get("addrs");
  if (clusterId === undefined || addrsText === undefined) return null;
  if (clusterId.length > CLUSTER_ID_CHARS_MAX || !/^[1-9][0-9]{0,15}$/.test(nodeText)) return null;
  if (!/^[1-9][0-9]{0,4}$/.test(httpText) || Number(httpText) > 65_535) return null;
  const parsed = BootstrapInfoSchema.safeParse({
    node_id: Number(nodeText),
    p2p_node_id: fields.get("p2p") ?? "",
    p2p_addresses: addrsText === "" ? [] : addrsText.split(","),
    p2p_relay_url: null,
    cluster_id: clusterId === "" ? null : clusterId,
  });
  if (!parsed.success) return null;
  const signed = signedPart(fields);
  if (signed === undefined) return null;
  return {
    advert: {
      nodeId: parsed.data.node_id,
      clusterId: parsed.data.cluster_id ?? null,
      p2pNodeId: parsed.data.p2p_node_id,
      addresses: parsed.data.p2p_addresses,
      httpPort: Number(httpText),
      ...signed,
    },
  };
}

/** `t` and `sig` together, both absent (`null`s), or `undefined` when malformed. */
function signedPart(
  fields: Map<string, string>,
): { issuedAtMs: number | null; signature: string | null } | undefined {
  const time = fields.get("t");
  const signature = fields.get("sig");
  if (time === undefined && signature === undefined) return { issuedAtMs: null, signature: null };
  if (time === undefined || signature === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(time) || !/^[0-9a-f]{64}$/.test(signature)) return undefined;
  return { issuedAtMs: Number(time), signature };
}
