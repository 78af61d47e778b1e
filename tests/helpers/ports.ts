/**
 * Ports for child nodes.
 *
 * A node needs UDP `port` (Iroh) and TCP `port + 1000` (HTTP) on 127.0.0.1. Ports are
 * drawn at random below the kernel's ephemeral range (32768 and up on Linux) and kept only
 * when both are free right now. Not from the OS's own choice (port 0): that is an ephemeral
 * port, and every client endpoint and outgoing socket in the meantime draws from the same
 * range, so a probed-free port could be taken before the child binds it. A port handed out
 * once is not handed out again by this process, so two nodes of one test never share one.
 *
 * Nor by any other test module or process on the machine while it may be in use: a port is
 * handed out only once this module has claimed it, a file of its own in `CLAIMS_DIR` made with
 * `createNew`. `deno test --parallel` runs the modules in isolates of their own, whose sets of
 * handed-out ports know nothing of each other, and a port probed free stays free only until
 * its child binds it, a second or more on a loaded machine: two modules once drew the same
 * port in that window, and the second node exited with "already in use". A module removes its
 * claims when it unloads; a claim older than `CLAIM_TTL_MS` is left from a run that could not,
 * and is taken over.
 *
 * UDP goes through `node:dgram`: Deno's own UDP API is still behind `--unstable-net`.
 *
 * @module
 */

import dgram from "node:dgram";

const HOST = "127.0.0.1";
const PORT_ATTEMPTS_MAX = 200;
const HTTP_PORT_OFFSET = 1000;
const BIND_PORT_MAX = 64535;
/** Bind ports come from [low, high); their HTTP twins stay below the ephemeral range too. */
let rangeLow = 20_000;
let rangeHigh = 31_000;
const handedOut = new Set<number>();
/** Where claims of ports live, shared by every run on the machine. */
export const CLAIMS_DIR = `${Deno.env.get("TMPDIR") ?? "/tmp"}/blixard-test-ports`;
/** Longer than a whole suite run: a claim this old was left by a run that ended without removing it. */
export const CLAIM_TTL_MS = 30 * 60_000;
/** This module's claims, removed when it unloads. */
const claims = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const path of claims) {
    try {
      Deno.removeSync(path);
    } catch {
      // Gone already (a stale claim taken over after 30 minutes): nothing to release.
    }
  }
});
/**
 * `BLIXARD_TEST_PORTS=LOW-HIGH` narrows the range for a whole run (tests or a benchmark), so
 * that sessions sharing the machine keep to ranges agreed between them.
 */
const PORTS_FROM_ENV = Deno.env.get("BLIXARD_TEST_PORTS");

/**
 * Draws later bind ports from `low` to `high` inclusive (`deno task chaos --ports`), so
 * that long runs beside other users of the machine stay in a range agreed with them.
 */
export function useBindPortRange(low: number, high: number): void {
  if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high) || low < 1024 || high < low) {
    throw new RangeError(`bind port range ${low}-${high}: must be 1024 <= low <= high`);
  }
  if (high > BIND_PORT_MAX) {
    throw new RangeError(`bind port range ${low}-${high}: high must be at most ${BIND_PORT_MAX}`);
  }
  rangeLow = low;
  rangeHigh = high + 1;
}

/** `LOW-HIGH` (as `--ports` and `BLIXARD_TEST_PORTS` take it) as two numbers; `null` if not that. */
export function parsePortRange(text: string): [low: number, high: number] | null {
  const match = /^(\d+)-(\d+)$/.exec(text);
  return match === null ? null : [Number(match[1]), Number(match[2])];
}

if (PORTS_FROM_ENV !== undefined) {
  const range = parsePortRange(PORTS_FROM_ENV);
  if (range === null) {
    throw new Error(`BLIXARD_TEST_PORTS=${PORTS_FROM_ENV}: give LOW-HIGH, e.g. 22000-22999`);
  }
  useBindPortRange(...range);
}

/** A bind port whose UDP port and TCP port + 1000 were free on 127.0.0.1 a moment ago. */
export async function freeBindPort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const port = rangeLow + Math.floor(Math.random() * (rangeHigh - rangeLow));
    if (handedOut.has(port) || !claimPort(port)) continue;
    handedOut.add(port);
    if (await isUdpPortFree(port) && isTcpPortFree(port + HTTP_PORT_OFFSET)) return port;
  }
  throw new Error(`no free UDP port with a free TCP port + 1000 after ${PORT_ATTEMPTS_MAX} tries`);
}

/** `count` consecutive bind ports, each with its UDP port and TCP port + 1000 free; returns the first. */
export async function freeConsecutiveBindPorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const first = await freeBindPort();
    let allFree = first + count - 1 <= BIND_PORT_MAX;
    for (let port = first + 1; allFree && port < first + count; port++) {
      allFree = !handedOut.has(port) && claimPort(port);
      if (!allFree) break;
      handedOut.add(port);
      allFree = await isUdpPortFree(port) && isTcpPortFree(port + HTTP_PORT_OFFSET);
    }
    if (!allFree) continue;
    return first;
  }
  throw new Error(`no ${count} consecutive free bind ports after ${PORT_ATTEMPTS_MAX} tries`);
}

/**
 * Claims `port` for this module: true when no other module or process on the machine holds a
 * live claim of it. A port this module claimed stays claimed (and in `handedOut`) whether or
 * not it was free, so it is never tried twice.
 */
export function claimPort(port: number): boolean {
  Deno.mkdirSync(CLAIMS_DIR, { recursive: true });
  const path = `${CLAIMS_DIR}/${port}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      Deno.openSync(path, { createNew: true, write: true }).close();
      claims.add(path);
      return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    try {
      const claimedAtMs = Deno.statSync(path).mtime?.getTime() ?? 0;
      if (Date.now() - claimedAtMs < CLAIM_TTL_MS) return false;
      Deno.removeSync(path);
    } catch (error) {
      // Released between the two calls: claim it on the next attempt.
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return false;
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
