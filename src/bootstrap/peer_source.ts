/**
 * Where a joiner fetches `/bootstrap` from, for each `--peers` entry (DESIGN.md section 6):
 * - `host:port` (the peer's `--bind`): `http://host:(port+1000)/bootstrap`;
 * - `http://…` or `https://…`: used as given;
 * - `dns:NAME`: the TXT records of NAME, each a `host:port`, an http(s) URL, or a member's
 *   identity itself (`blixard1 …`, `dns_identity.ts`), which needs no HTTP request at all.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { parseSocketAddress } from "../transport/socket_address.ts";
import { BootstrapError } from "./bootstrap_error.ts";
import { type DnsIdentity, isDnsIdentityText, parseDnsIdentity } from "./dns_identity.ts";

const logger = getLogger(["blixard", "bootstrap"]);

/** The HTTP port is the P2P port plus this (DESIGN.md section 3). */
export const HTTP_PORT_OFFSET = 1000;
/** Highest P2P port whose HTTP port (port + 1000) is still a port. */
export const P2P_PORT_MAX = 65_535 - HTTP_PORT_OFFSET;
/** TXT records used per `dns:NAME`; more are ignored. */
export const DNS_TXT_RECORDS_MAX = 16;
/** Longest entry or TXT record accepted. */
const ENTRY_CHARS_MAX = 2048;

/** A parsed `--peers` entry. */
export type PeerEntry =
  | { kind: "http"; entry: string; url: string }
  | { kind: "dns"; entry: string; name: string };

/** One `/bootstrap` URL to try, and the peer name used in logs and errors. */
export interface BootstrapSource {
  /** The peer as the operator wrote it, or `record (dns:NAME)`. */
  peer: string;
  /** The `/bootstrap` URL. */
  url: string;
}

/** A member's identity read from a TXT record of `dns:NAME`: nothing to fetch. */
export interface IdentitySource {
  /** `node N (dns:NAME)`. */
  peer: string;
  /** The decoded record; its signature is checked by the caller, which knows the secret. */
  identity: DnsIdentity;
}

/** What an entry resolves to: `/bootstrap` URLs to fetch, or identities read from DNS. */
export type PeerSource = BootstrapSource | IdentitySource;

/** Looks up TXT records: each record is a list of strings to be joined. */
export type TxtResolver = (name: string, signal: AbortSignal | undefined) => Promise<string[][]>;

const DNS_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;

/** Parses one `--peers` entry; throws `BootstrapError` (`invalid_peer_entry`) with the rule broken. */
export function parsePeerEntry(entry: string): PeerEntry {
  const fail = (rule: string): never => {
    throw new BootstrapError(entry, "invalid_peer_entry", rule);
  };
  if (entry.length === 0 || entry.length > ENTRY_CHARS_MAX) {
    fail(`an entry must have 1–${ENTRY_CHARS_MAX} characters`);
  }
  if (entry.startsWith("dns:")) {
    const name = entry.slice("dns:".length);
    return isDnsName(name)
      ? { kind: "dns", entry, name }
      : fail(`${JSON.stringify(name)} is not a DNS name`);
  }
  const url = bootstrapUrlOf(entry);
  return typeof url === "string" ? { kind: "http", entry, url } : fail(url.rule);
}

/**
 * The sources of one entry: one for `host:port` and URLs, one per usable TXT record for
 * `dns:NAME`. Throws `BootstrapError` (`dns_failed`) when a name yields none.
 */
export async function resolvePeerEntry(
  entry: PeerEntry,
  options?: { resolveTxt?: TxtResolver; signal?: AbortSignal },
): Promise<PeerSource[]> {
  if (entry.kind === "http") return [{ peer: entry.entry, url: entry.url }];
  const resolveTxt = options?.resolveTxt ?? resolveTxtWithDeno;
  let records: string[][];
  try {
    records = await resolveTxt(entry.name, options?.signal);
  } catch (error) {
    if (options?.signal?.aborted) throw error;
    throw new BootstrapError(
      entry.entry,
      "dns_failed",
      `TXT lookup failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const sources: PeerSource[] = [];
  for (const record of records.slice(0, DNS_TXT_RECORDS_MAX)) {
    const text = record.join("").trim();
    if (isDnsIdentityText(text)) {
      const identity = readIdentity(text, entry.entry);
      if (identity !== null) sources.push(identity);
      continue;
    }
    const url = bootstrapUrlOf(text);
    if (typeof url === "string") {
      sources.push({ peer: `${text} (${entry.entry})`, url });
    } else {
      logger.warn("Ignored TXT record {record} of {entry}: {rule}", {
        record: text,
        entry: entry.entry,
        rule: url.rule,
      });
    }
  }
  if (sources.length === 0) {
    throw new BootstrapError(
      entry.entry,
      "dns_failed",
      `no TXT record is a host:port, an http(s) URL or a valid blixard1 identity record`,
    );
  }
  return sources;
}

/** An identity record as a source, or `null` (logged) when it does not decode. */
function readIdentity(text: string, entry: string): IdentitySource | null {
  try {
    const identity = parseDnsIdentity(text, `record (${entry})`);
    return { peer: `node ${identity.info.node_id} (${entry})`, identity };
  } catch (error) {
    logger.warn("Ignored TXT record {record} of {entry}: {reason}", {
      record: text.slice(0, 200),
      entry,
      reason: (error as Error).message,
    });
    return null;
  }
}

/**
 * A TXT resolver that asks `nameServer` (`--dns-server ip:port`), or the system's resolver
 * for `null`.
 */
export function txtResolverFor(nameServer: { ipAddr: string; port: number } | null): TxtResolver {
  return (name, signal) =>
    Deno.resolveDns(name, "TXT", {
      ...(nameServer === null ? {} : { nameServer }),
      ...(signal === undefined ? {} : { signal }),
    });
}

const resolveTxtWithDeno = txtResolverFor(null);

/**
 * Parses `--dns-server` (`ip:port`, or an IP address for port 53) into the name server of
 * `Deno.resolveDns`, or returns the rule it breaks: the resolver takes an address, not a name.
 */
export function parseDnsServer(text: string): { ipAddr: string; port: number } | { rule: string } {
  const address = parseSocketAddress(text) ?? parseSocketAddress(
    text.includes(":") && !text.startsWith("[") ? `[${text}]:53` : `${text}:53`,
  );
  if (address === null || address.port === 0) {
    return { rule: "must be an IP address with an optional port, e.g. 127.0.0.1:5353 or [::1]:53" };
  }
  return { ipAddr: address.host, port: address.port };
}

/** The `/bootstrap` URL of a `host:port` or http(s) URL, or the rule that `text` breaks. */
function bootstrapUrlOf(text: string): string | { rule: string } {
  if (/^https?:\/\//i.test(text)) return checkedUrl(text);
  if (text.includes("://")) return { rule: "only http:// and https:// URLs are fetched" };
  const colon = text.lastIndexOf(":");
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  const port = /^[1-9][0-9]{0,4}$/.test(portText) ? Number(portText) : Number.NaN;
  if (colon < 0 || !(port <= P2P_PORT_MAX)) {
    return {
      rule: `must be host:port with a port of 1–${P2P_PORT_MAX}, an http(s) URL, or dns:NAME`,
    };
  }
  if (!isHost(host)) return { rule: `${JSON.stringify(host)} is not an IP address or host name` };
  return `http://${host}:${port + HTTP_PORT_OFFSET}/bootstrap`;
}

function checkedUrl(text: string): string | { rule: string } {
  try {
    const url = new URL(text);
    if (url.username !== "" || url.password !== "") {
      return { rule: "a URL must not hold credentials: they would be logged" };
    }
    return text;
  } catch {
    return { rule: "not a valid URL" };
  }
}

function isHost(host: string): boolean {
  if (host.startsWith("[")) return parseSocketAddress(`${host}:1`)?.family === 6;
  if (/^[0-9.]+$/.test(host)) return parseSocketAddress(`${host}:1`)?.family === 4;
  return isDnsName(host);
}

/** Whether `name` is a DNS name: dot-separated labels, with an optional final dot. */
export function isDnsName(name: string): boolean {
  const labels = name.endsWith(".") ? name.slice(0, -1).split(".") : name.split(".");
  return name.length >= 1 && name.length <= 253 && labels.every((label) => DNS_LABEL.test(label));
}
