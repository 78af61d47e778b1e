/**
 * `ip:port` socket addresses as Iroh uses them: IPv4 `a.b.c.d:port` or IPv6
 * `[address]:port`. Host names are not socket addresses: they need a resolver first.
 *
 * @module
 */

/** A parsed socket address. `host` is canonical, and IPv6 hosts are without brackets. */
export interface SocketAddress {
  /** The IP address in canonical text form (IPv6 compressed and lower case). */
  host: string;
  /** 0–65535; 0 means "any port" and is only meaningful for binding. */
  port: number;
  /** IP version. */
  family: 4 | 6;
}

const IPV4_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = new RegExp(`^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`);
const PORT = /^(0|[1-9][0-9]{0,4})$/;
const PORT_MAX = 65_535;

/** Parses `ip:port` or `[ipv6]:port`; `null` when `text` is not one. */
export function parseSocketAddress(text: string): SocketAddress | null {
  const ipv6 = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  const ipv4 = ipv6 === null ? /^([^:]*):([^:]*)$/.exec(text) : null;
  const [, hostText, portText] = ipv6 ?? ipv4 ?? [];
  if (hostText === undefined || portText === undefined || !PORT.test(portText)) return null;
  const port = Number(portText);
  if (port > PORT_MAX) return null;
  if (ipv4 !== null) return IPV4.test(hostText) ? { host: hostText, port, family: 4 } : null;
  const host = canonicalIpv6(hostText);
  return host === null ? null : { host, port, family: 6 };
}

/** Parses a bare IP address (`127.0.0.1`, `::1`) as a socket address of port 0; `null` if not one. */
export function parseIpAddress(text: string): SocketAddress | null {
  return parseSocketAddress(text.includes(":") ? `[${text}]:0` : `${text}:0`);
}

/** Formats a socket address as `ip:port` or `[ipv6]:port`. */
export function formatSocketAddress(address: SocketAddress): string {
  return address.family === 6
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Whether the host is the unspecified address (`0.0.0.0` or `::`): bindable, never reachable. */
export function isUnspecifiedAddress(address: SocketAddress): boolean {
  return address.host === "0.0.0.0" || address.host === "::";
}

/** Whether the address can be dialled: a specified host and a port other than 0. */
export function isDialableAddress(address: SocketAddress): boolean {
  return !isUnspecifiedAddress(address) && address.port !== 0;
}

function canonicalIpv6(text: string): string | null {
  // Zone ids (`%eth0`) are refused: they name an interface of one machine only.
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(":")) return null;
  try {
    // The WHATWG URL parser validates IPv6 fully and prints it in canonical form.
    const hostname = new URL(`http://[${text}]/`).hostname;
    return hostname.slice(1, -1);
  } catch {
    return null;
  }
}

/**
 * The source that `address` (an IP address, or `ip:port`, `[ipv6]:port`) is counted as: the
 * IPv4 address itself, or the first four groups (the /64) of an IPv6 address. IPv4-mapped
 * IPv6 addresses count as their IPv4 address. Anything else is returned unchanged.
 */
export function sourceOfAddress(address: string): string {
  let host = address;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed !== null) host = bracketed[1]!;
  else if (/^[\d.]+:\d+$/.test(host)) host = host.slice(0, host.lastIndexOf(":"));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped !== null) return mapped[1]!;
  if (!host.includes(":")) return host;
  return `${expandIpv6(host).slice(0, 4).join(":")}::/64`;
}

/** The eight groups of an IPv6 address, lowercase and without leading zeros. */
function expandIpv6(host: string): string[] {
  const withoutZone = host.split("%")[0]!.toLowerCase();
  const [head = "", tail] = withoutZone.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill("0");
  return [...headGroups, ...(tail === undefined ? [] : zeros), ...tailGroups]
    .map((group) => group.replace(/^0+(?=.)/, ""));
}
