/**
 * `BootstrapInfo`: what a node's `GET /bootstrap` answers (DESIGN.md section 4), so that a
 * joiner who knows only `host:port` learns the node's P2P identity and addresses.
 *
 * The body comes from the network, so it is validated strictly: unknown fields, bad
 * types, ids that are not Iroh endpoint ids and addresses that are not dialable `ip:port`
 * are refused with a one-line error naming the peer and the field.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { isValidEndpointId } from "../transport/iroh.ts";
import {
  formatSocketAddress,
  isDialableAddress,
  parseSocketAddress,
} from "../transport/socket_address.ts";
import { BootstrapError } from "./bootstrap_error.ts";

/** Largest `/bootstrap` body accepted, in bytes. */
export const BOOTSTRAP_BODY_BYTES_MAX = 64 * 1024;
/** Most direct addresses a node advertises. */
export const P2P_ADDRESSES_MAX = 16;
const CLUSTER_ID_CHARS_MAX = 128;
const SIGNATURE_CHARS_MAX = 512;
const URL_CHARS_MAX = 2048;

const nodeId = lazySchema(() => z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER)));

const socketAddress = lazySchema(() =>
  z.pipe(
    z.string().check(z.maxLength(64)),
    z.transform((text, context) => {
      const address = parseSocketAddress(text);
      if (address === null || !isDialableAddress(address)) {
        context.issues.push({ code: "custom", message: "invalid address", input: text });
        return z.NEVER;
      }
      return formatSocketAddress(address);
    }),
  )
);

const httpUrl = lazySchema(() =>
  z.string().check(
    z.maxLength(URL_CHARS_MAX),
    z.refine((text) => {
      try {
        const url = new URL(text);
        return url.protocol === "http:" || url.protocol === "https:";
      } catch {
        return false;
      }
    }),
  )
);

/** The strict zod schema of a `/bootstrap` body. Addresses come out in canonical form. */
export const BootstrapInfoSchema = lazySchema(() =>
  z.strictObject({
    node_id: nodeId,
    p2p_node_id: z.string().check(z.refine(isValidEndpointId)),
    p2p_addresses: z.array(socketAddress).check(z.maxLength(P2P_ADDRESSES_MAX)),
    p2p_relay_url: z.nullable(httpUrl),
    cluster_id: z.optional(
      z.nullable(z.string().check(z.minLength(1), z.maxLength(CLUSTER_ID_CHARS_MAX))),
    ),
    leader_id: z.optional(z.nullable(nodeId)),
    issued_at_ms: z.optional(z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER))),
    valid_for_ms: z.optional(z.int().check(z.minimum(1), z.maximum(Number.MAX_SAFE_INTEGER))),
    signature: z.optional(z.string().check(z.minLength(1), z.maxLength(SIGNATURE_CHARS_MAX))),
  }).check(z.refine((info) => info.p2p_addresses.length > 0 || info.p2p_relay_url !== null, {
    path: ["p2p_addresses"],
    message: "empty",
  }))
);

/** A validated `/bootstrap` answer. */
export type BootstrapInfo = z.output<typeof BootstrapInfoSchema>;

/** What each field must be, as the error message says it. */
const FIELD_RULES: Record<keyof BootstrapInfo, string> = {
  node_id: "must be an integer ≥ 1",
  p2p_node_id: "not a valid Iroh endpoint id",
  p2p_addresses: `must be an array of at most ${P2P_ADDRESSES_MAX} "ip:port" addresses, ` +
    "not empty unless p2p_relay_url is set",
  p2p_relay_url: "must be an http(s) URL or null",
  cluster_id: `must be a string of 1–${CLUSTER_ID_CHARS_MAX} characters or null`,
  leader_id: "must be an integer ≥ 1 or null",
  issued_at_ms: "must be an integer ≥ 0 (Unix milliseconds)",
  valid_for_ms: "must be an integer ≥ 1 (milliseconds)",
  signature: `must be a string of 1–${SIGNATURE_CHARS_MAX} characters`,
};

/**
 * Parses and validates the body of `peer`'s `/bootstrap` answer. Throws `BootstrapError`
 * with reason `not_json` or `invalid_field` (and `field` set), e.g.
 * `peer 127.0.0.1:7001: /bootstrap field p2p_node_id: not a valid Iroh endpoint id`.
 */
export function parseBootstrapInfo(body: string, peer: string): BootstrapInfo {
  if (body.length > BOOTSTRAP_BODY_BYTES_MAX) {
    throw new BootstrapError(
      peer,
      "body_too_large",
      `/bootstrap body of ${body.length} characters exceeds ${BOOTSTRAP_BODY_BYTES_MAX} bytes`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new BootstrapError(
      peer,
      "not_json",
      // The parser quotes the body, which is the peer's to choose: control characters
      // (a newline) would break the one-line message, or forge log lines.
      `/bootstrap body: not JSON (${(error as Error).message.replaceAll(/\p{Cc}/gu, " ")})`,
      {
        cause: error,
      },
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new BootstrapError(peer, "invalid_field", "/bootstrap body: not a JSON object");
  }
  const parsed = BootstrapInfoSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const { field, rule } = describeIssue(parsed.error.issues[0], json);
  throw new BootstrapError(peer, "invalid_field", `/bootstrap field ${field}: ${rule}`, { field });
}

function describeIssue(
  issue: z.core.$ZodIssue | undefined,
  json: object,
): { field: string; rule: string } {
  if (issue?.code === "unrecognized_keys") {
    const field = issue.keys[0] ?? "?";
    return { field: quoteField(field), rule: "not a BootstrapInfo field" };
  }
  const [name, index] = issue?.path ?? [];
  if (typeof name !== "string" || !(name in FIELD_RULES)) {
    return { field: "?", rule: issue?.message ?? "invalid" };
  }
  if (!(name in json)) return { field: name, rule: "missing" };
  if (name === "p2p_addresses" && typeof index === "number") {
    const value = (json as { p2p_addresses: unknown[] }).p2p_addresses[index];
    return {
      field: `${name}[${index}]`,
      rule: `${preview(value)} is not a dialable "ip:port" address`,
    };
  }
  return { field: name, rule: FIELD_RULES[name as keyof BootstrapInfo] };
}

/** A field name from the network, shown safely: quoted when it is not a plain word. */
function quoteField(name: string): string {
  return /^[a-z0-9_]{1,64}$/.test(name) ? name : JSON.stringify(name.slice(0, 64));
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 70 ? `${text.slice(0, 70)}…` : text;
}

/** What {@linkcode bootstrapInfoFor} reads from the endpoint (a `P2pEndpoint`). */
export interface BootstrapEndpoint {
  readonly nodeId: string;
  /** The relay the endpoint is connected to now, or `null` (relays off, or not reached yet). */
  homeRelayUrl(): string | null;
  addresses(): string[];
}

/**
 * The node's own answer to `GET /bootstrap`, validated like any other. `p2p_relay_url` is
 * the relay the endpoint actually uses, not the configured one: a joiner that dials a
 * relay the node never reached would wait for nothing.
 */
export function bootstrapInfoFor(
  endpoint: BootstrapEndpoint,
  node: { nodeId: number; clusterId?: string | null; leaderId?: number | null },
): BootstrapInfo {
  return BootstrapInfoSchema.parse({
    node_id: node.nodeId,
    p2p_node_id: endpoint.nodeId,
    p2p_addresses: endpoint.addresses().slice(0, P2P_ADDRESSES_MAX),
    p2p_relay_url: endpoint.homeRelayUrl(),
    cluster_id: node.clusterId ?? null,
    leader_id: node.leaderId ?? null,
  });
}
