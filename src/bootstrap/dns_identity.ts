/**
 * DNS TXT records that carry a member's identity itself (DESIGN.md section 7), so that a
 * joiner or client given `dns:NAME` connects over Iroh with no HTTP request at all:
 *
 * ```
 * blixard1 cluster=<id> node=<n> p2p=<endpoint id> addrs=<ip:port,…> [relay=<url>] [t=<unix s> sig=<hex>]
 * ```
 *
 * Fields are separated by single spaces, each at most once, in this order when written; a
 * reader takes them in any order but refuses unknown ones (the text comes from the network).
 * `addrs` may be empty when `relay` is given. With a cluster secret the record ends with
 * `t=` (when it was issued, Unix seconds) and `sig=`: the lowercase hex of
 * HMAC-SHA256(secret, `"blixard-dns-identity-v1\n"` + the record's text before ` sig=`).
 * The label keeps these MACs apart from the `/bootstrap` signature and the secret proofs.
 *
 * A record only pins a member's key: whatever it says, the connection must reach that key
 * and `ping` must name the same node, exactly as for `/bootstrap`. A signature is therefore
 * not given an expiry (DNS records live as long as the zone keeps them); a record issued in
 * the future beyond the allowed clock skew is refused.
 *
 * @module
 */

import type { ClusterSecret } from "../auth/cluster_secret.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import { type BootstrapInfo, BootstrapInfoSchema } from "./bootstrap_info.ts";

/** The first word of an identity record; a TXT record that starts with it is one. */
export const DNS_IDENTITY_PREFIX = "blixard1";
/** The domain label at the start of the signed bytes. */
export const DNS_IDENTITY_SIGNATURE_LABEL = "blixard-dns-identity-v1\n";
/** Longest identity record accepted (all strings of one TXT record joined). */
export const DNS_IDENTITY_CHARS_MAX = 2048;
/** Longest character-string of a TXT record (RFC 1035 §3.3): longer text is split. */
export const TXT_STRING_CHARS_MAX = 255;
/** How far in the future an issue time may lie before it is refused (clocks differ). */
export const ISSUE_TIME_SKEW_SECONDS_MAX = 300;

const FIELDS = ["cluster", "node", "p2p", "addrs", "relay", "t", "sig"] as const;
type Field = typeof FIELDS[number];
const SIGNATURE_FORMAT = /^[0-9a-f]{64}$/;
const encoder = new TextEncoder();

/** A decoded identity record: what `/bootstrap` would have said, and the signature if any. */
export interface DnsIdentity {
  /** The member's identity, validated by the `/bootstrap` schema (no `signature`). */
  info: BootstrapInfo;
  /** When it was signed (Unix seconds) and the text that was signed; `null` when unsigned. */
  signed: { issuedAtSeconds: number; signedText: string; signature: string } | null;
}

/** Whether TXT text is meant as an identity record (and must then parse as one). */
export function isDnsIdentityText(text: string): boolean {
  return text === DNS_IDENTITY_PREFIX || text.startsWith(`${DNS_IDENTITY_PREFIX} `);
}

/**
 * Decodes an identity record from `peer` (`record of dns:NAME`). Throws `BootstrapError`
 * (`invalid_field`, with the field) naming what is wrong.
 */
export function parseDnsIdentity(text: string, peer: string): DnsIdentity {
  const refuse = (field: string, rule: string): never => {
    throw new BootstrapError(peer, "invalid_field", `DNS identity record field ${field}: ${rule}`, {
      field,
    });
  };
  if (text.length > DNS_IDENTITY_CHARS_MAX) {
    refuse("record", `longer than ${DNS_IDENTITY_CHARS_MAX} characters`);
  }
  const [prefix, ...tokens] = text.split(" ");
  if (prefix !== DNS_IDENTITY_PREFIX) refuse("record", `must start with "${DNS_IDENTITY_PREFIX} "`);
  const values = new Map<Field, string>();
  for (const token of tokens) {
    const equals = token.indexOf("=");
    const key = token.slice(0, Math.max(0, equals)) as Field;
    if (equals < 0 || !FIELDS.includes(key)) {
      refuse(JSON.stringify(token.slice(0, 32)), "not key=value with a known key");
    }
    if (values.has(key)) refuse(key, "given more than once");
    values.set(key, token.slice(equals + 1));
  }
  const node = values.get("node") ?? "";
  const addresses = values.get("addrs") ?? "";
  const parsed = BootstrapInfoSchema.safeParse({
    node_id: /^[1-9][0-9]{0,15}$/.test(node) ? Number(node) : null,
    p2p_node_id: values.get("p2p") ?? "",
    p2p_addresses: addresses === "" ? [] : addresses.split(","),
    p2p_relay_url: values.get("relay") ?? null,
    cluster_id: values.get("cluster") ?? "",
  });
  if (!parsed.success) {
    const path = parsed.error.issues[0]?.path[0];
    const field = FIELD_OF_INFO[String(path)] ?? "record";
    refuse(field, field === "addrs" ? "at most 16 dialable ip:port, or relay= set" : "invalid");
  }
  return { info: parsed.data!, signed: signatureOf(text, values, refuse) };
}

const FIELD_OF_INFO: Record<string, Field> = {
  node_id: "node",
  p2p_node_id: "p2p",
  p2p_addresses: "addrs",
  p2p_relay_url: "relay",
  cluster_id: "cluster",
};

function signatureOf(
  text: string,
  values: Map<Field, string>,
  refuse: (field: string, rule: string) => never,
): DnsIdentity["signed"] {
  const time = values.get("t");
  const signature = values.get("sig");
  if (time === undefined && signature === undefined) return null;
  if (time === undefined || !/^[0-9]{1,12}$/.test(time)) {
    return refuse("t", "a signed record needs t=<Unix seconds>");
  }
  if (signature === undefined || !SIGNATURE_FORMAT.test(signature)) {
    return refuse("sig", "must be 64 lowercase hex characters");
  }
  const marker = ` sig=${signature}`;
  if (!text.endsWith(marker)) return refuse("sig", "must be the last field");
  return {
    issuedAtSeconds: Number(time),
    signedText: text.slice(0, -marker.length),
    signature,
  };
}

/**
 * The identity record of `info` (a member as `/status` or `/bootstrap` shows it), signed
 * with `options.secret` at `options.nowSeconds` when a secret is given.
 */
export async function formatDnsIdentity(
  info: Pick<BootstrapInfo, "node_id" | "p2p_node_id" | "p2p_addresses" | "p2p_relay_url"> & {
    cluster_id: string;
  },
  options: { secret: ClusterSecret | null; nowSeconds: number },
): Promise<string> {
  const fields = [
    DNS_IDENTITY_PREFIX,
    `cluster=${info.cluster_id}`,
    `node=${info.node_id}`,
    `p2p=${info.p2p_node_id}`,
    `addrs=${info.p2p_addresses.join(",")}`,
    ...(info.p2p_relay_url === null ? [] : [`relay=${info.p2p_relay_url}`]),
  ];
  if (options.secret === null) return fields.join(" ");
  const signedText = [...fields, `t=${Math.floor(options.nowSeconds)}`].join(" ");
  const mac = await options.secret.sign(encoder.encode(DNS_IDENTITY_SIGNATURE_LABEL + signedText));
  return `${signedText} sig=${mac.toHex()}`;
}

/**
 * Checks that `identity` (decoded from `peer`'s record) is signed with `secret`, and not
 * issued in the future. Throws `BootstrapError` (`bad_signature`, field `sig`) otherwise.
 */
export async function verifyDnsIdentity(
  identity: DnsIdentity,
  options: { secret: ClusterSecret; peer: string; nowSeconds: number },
): Promise<void> {
  const refuse = (detail: string): never => {
    throw new BootstrapError(options.peer, "bad_signature", `DNS identity record ${detail}`, {
      field: "sig",
    });
  };
  const signed = identity.signed;
  if (signed === null) {
    return refuse(
      "is not signed, but this side has a cluster secret: publish the records that " +
        "'blixard cluster dns-records' prints with the secret",
    );
  }
  const valid = await options.secret.verify(
    encoder.encode(DNS_IDENTITY_SIGNATURE_LABEL + signed.signedText),
    Uint8Array.fromHex(signed.signature),
  );
  if (!valid) {
    refuse(
      "signature does not match this side's cluster secret: the cluster has another secret " +
        "(check --cluster-secret-file), or the record was changed",
    );
  }
  if (signed.issuedAtSeconds > options.nowSeconds + ISSUE_TIME_SKEW_SECONDS_MAX) {
    refuse(`was issued in the future (t=${signed.issuedAtSeconds}): check the clocks`);
  }
}

/**
 * `text` as the character-strings of one TXT record in a zone file: each at most 255
 * characters, quoted (the record holds no `"` or `\`).
 */
export function quotedTxtStrings(text: string): string {
  const strings: string[] = [];
  for (let start = 0; start < text.length; start += TXT_STRING_CHARS_MAX) {
    strings.push(`"${text.slice(start, start + TXT_STRING_CHARS_MAX)}"`);
  }
  return strings.join(" ");
}
