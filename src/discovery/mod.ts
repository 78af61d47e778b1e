/**
 * Discovery on the local network (issue 10, DESIGN.md section 7): mDNS / DNS-SD.
 *
 * - `advert.ts`: the TXT schema of `_blixard._udp.local` and its strict decoder;
 * - `advert_signature.ts`: the advert's signature under the cluster secret;
 * - `candidate_table.ts`: the bounded, TTL-expired table of nodes seen;
 * - `formation.ts`: the pure rule that decides found, join or wait (`--bootstrap-expect`);
 * - `multicast_socket.ts`, `mdns_responder.ts`, `mdns_discovery.ts`: the socket
 *   (`multicast-dns`), the RFC 6762 responder, and browsing that fills the table;
 * - `record_order.ts`: the order of records that breaks a simultaneous-probe tie (§8.2);
 * - `mdns_join.ts`: waiting for the formation rule, and finding a seed among the
 *   candidates, connected and checked the way a `/bootstrap` seed is;
 * - `node_discovery.ts`: all of it as a starting node uses it (interface, advert, found or
 *   join, seeds); `testing.ts` is an in-memory socket for tests.
 *
 * With mDNS off nothing here runs: no socket is opened.
 *
 * @module
 */

export * from "./advert.ts";
export * from "./advert_signature.ts";
export * from "./candidate_table.ts";
export * from "./formation.ts";
export * from "./mdns_discovery.ts";
export * from "./mdns_join.ts";
export * from "./mdns_responder.ts";
export * from "./multicast_socket.ts";
export * from "./node_discovery.ts";
export * from "./record_order.ts";
