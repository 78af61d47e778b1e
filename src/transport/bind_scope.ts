/**
 * What `--bind` covers: the sockets the endpoint asks Iroh for, which incoming connections
 * arrived where the operator said to listen, and which addresses peers are told by default.
 *
 * Iroh binds one UDP socket per IP family and, for a family it is not given an address
 * of, opens one on the wildcard address (`0.0.0.0` or `[::]`), reachable from every
 * network the machine is on. The binding (`@number0/iroh` 1.1) cannot clear those default
 * sockets, but an address given for a family replaces that family's default. So the node
 * gives the other family its loopback address: a socket nobody off the machine can reach
 * (docs/decisions.md, "Sockets only where --bind says"). `[::]` keeps the meaning it has
 * for the HTTP server on Linux, every address of both families.
 *
 * @module
 */

import {
  formatSocketAddress,
  isUnspecifiedAddress,
  parseSocketAddress,
  type SocketAddress,
} from "./socket_address.ts";

/** One address of a network interface, as `Deno.networkInterfaces()` lists it. */
export interface InterfaceAddress {
  family: "IPv4" | "IPv6";
  address: string;
}

/**
 * The socket for the IP family that `bind` is not of: that family's loopback address,
 * on a port the OS chooses, which only this machine reaches. For `[::]`, which covers both
 * families, it is `0.0.0.0` on the same port.
 */
export function companionBindAddress(bind: SocketAddress): SocketAddress {
  if (coversBothFamilies(bind)) return { host: "0.0.0.0", port: bind.port, family: 4 };
  return bind.family === 4
    ? { host: "::1", port: 0, family: 6 }
    : { host: "127.0.0.1", port: 0, family: 4 };
}

/** Whether `bind` is `[::]`: every address of both IP families, as `Deno.serve` takes it. */
export function coversBothFamilies(bind: SocketAddress): boolean {
  return bind.family === 6 && isUnspecifiedAddress(bind);
}

/**
 * Whether a connection that arrived at local IP `localIp` (the destination address of its
 * first packet) is one the operator asked to listen for: the bind address itself, any
 * address of its family for `0.0.0.0`, any address at all for `[::]`; and the other
 * family's loopback, where the companion socket is. Iroh tells its peers that socket's
 * address in-band and may pick it for a later connection between two nodes of one
 * machine; only this machine reaches it. `null` (the OS did not say) is not in scope.
 */
export function isInBindScope(bind: SocketAddress, localIp: SocketAddress | null): boolean {
  if (localIp === null) return false;
  if (coversBothFamilies(bind)) return true;
  if (localIp.family !== bind.family) return localIp.host === companionBindAddress(bind).host;
  return isUnspecifiedAddress(bind) || localIp.host === bind.host;
}

/**
 * The addresses to tell peers when no `--advertise` is given, for the sockets in the bind
 * scope: a bound address itself; for a wildcard socket, the addresses of the interfaces of
 * its family, on its port. Loopback addresses count only when the machine has no other
 * address of that family, and IPv6 link-local addresses never (they need an interface
 * name, which is the peer's own).
 */
export function defaultAdvertisedAddresses(
  boundInScope: readonly SocketAddress[],
  interfaces: readonly InterfaceAddress[],
): string[] {
  const addresses = boundInScope.flatMap((bound) => addressesOf(bound, interfaces));
  return [...new Set(addresses)].sort();
}

function addressesOf(bound: SocketAddress, interfaces: readonly InterfaceAddress[]): string[] {
  if (!isUnspecifiedAddress(bound)) return [formatSocketAddress(bound)];
  const family = bound.family === 4 ? "IPv4" : "IPv6";
  const hosts = interfaces
    .filter((entry) => entry.family === family && !isIpv6LinkLocal(entry.address))
    .map((entry) => entry.address.toLowerCase());
  const routable = hosts.filter((host) => !isLoopbackHost(host));
  const chosen = routable.length > 0 ? routable : hosts;
  // Parsing again puts each address in canonical form and drops any the OS wrote otherwise.
  return chosen
    .map((host) => parseSocketAddress(formatSocketAddress({ ...bound, host })))
    .filter((address) => address !== null)
    .map((address) => formatSocketAddress(address));
}

function isLoopbackHost(host: string): boolean {
  return host === "::1" || host.startsWith("127.");
}

function isIpv6LinkLocal(host: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(host);
}
