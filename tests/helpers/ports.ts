/**
 * Ports for child nodes, chosen by the operating system.
 *
 * A node needs UDP `port` (Iroh) and TCP `port + 1000` (HTTP) on 127.0.0.1. The OS picks a
 * free UDP port; we keep it only when its HTTP twin is free too. Both probes are closed
 * before the child binds, so another process could take them in between: callers that
 * see "in use" at start retry with new ports (`startNodeWithFreshPorts` does).
 *
 * UDP goes through `node:dgram`: Deno's own UDP API is still behind `--unstable-net`.
 *
 * @module
 */

import dgram from "node:dgram";

const HOST = "127.0.0.1";
const PORT_ATTEMPTS_MAX = 50;
const HTTP_PORT_OFFSET = 1000;
const BIND_PORT_MAX = 64535;

/** A bind port whose UDP port and TCP port + 1000 were free on 127.0.0.1 a moment ago. */
export async function freeBindPort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const udp = await bindUdp(0);
    const port = udp.address().port;
    try {
      if (port > BIND_PORT_MAX) continue;
      if (isTcpPortFree(port + HTTP_PORT_OFFSET)) return port;
    } finally {
      await closeUdp(udp);
    }
  }
  throw new Error(`no free UDP port with a free TCP port + 1000 after ${PORT_ATTEMPTS_MAX} tries`);
}

/** `count` consecutive bind ports, each with its UDP port and TCP port + 1000 free; returns the first. */
export async function freeConsecutiveBindPorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const first = await freeBindPort();
    let allFree = first + count - 1 <= BIND_PORT_MAX;
    for (let port = first + 1; allFree && port < first + count; port++) {
      allFree = await isUdpPortFree(port) && isTcpPortFree(port + HTTP_PORT_OFFSET);
    }
    if (allFree) return first;
  }
  throw new Error(`no ${count} consecutive free bind ports after ${PORT_ATTEMPTS_MAX} tries`);
}

/** True when TCP `port` on 127.0.0.1 can be bound right now. */
export function isTcpPortFree(port: number): boolean {
  try {
    Deno.listen({ hostname: HOST, port }).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return false;
    throw error;
  }
}

/** True when UDP `port` on 127.0.0.1 can be bound right now. */
export async function isUdpPortFree(port: number): Promise<boolean> {
  try {
    await closeUdp(await bindUdp(port));
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === "EADDRINUSE") return false;
    throw error;
  }
}

/** A UDP socket bound to 127.0.0.1:`port` (0: the OS chooses). Close it with `closeUdp`. */
export function bindUdp(port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4");
    socket.once("error", reject);
    socket.bind(port, HOST, () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

/** Closes a socket from `bindUdp`. */
export function closeUdp(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()));
}
