/**
 * How a new node finds the cluster (DESIGN.md sections 4 and 6): each `--peers` entry
 * becomes a `/bootstrap` URL (`peer_source.ts`), the answer is validated strictly as
 * `BootstrapInfo` (`bootstrap_info.ts`), and `findSeed` (`bootstrap_client.ts`) races the
 * peers, connects over Iroh to the P2P id a peer advertised and pings it, retrying with
 * capped exponential backoff until the join timeout. `bootstrapInfoFor` builds the
 * node's own `/bootstrap` answer, and `bootstrap_signature.ts` signs it with the cluster
 * secret and verifies it on the joiner's side. `dns_identity.ts` reads and writes the TXT
 * records that carry a member's identity itself (`dns:NAME` with no HTTP at all), and
 * `peer_cache.ts` keeps verified identities between runs of the CLI.
 *
 * @module
 */

export * from "./bootstrap_client.ts";
export * from "./bootstrap_error.ts";
export * from "./bootstrap_info.ts";
export * from "./bootstrap_signature.ts";
export * from "./dns_identity.ts";
export * from "./peer_cache.ts";
export * from "./peer_source.ts";
