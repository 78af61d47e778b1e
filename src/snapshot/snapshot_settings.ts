/**
 * Where a node's snapshot images are fetched from, and the knobs tests turn: the chunk size
 * (`BLIXARD_SNAPSHOT_CHUNK_BYTES`, so that a small test state spans many chunks) and the
 * compaction interval (`BLIXARD_SNAPSHOT_INTERVAL_ENTRIES`, so that a test cluster compacts
 * after a few hundred writes). Operators have no reason to set them.
 *
 * @module
 */

import { BACKUP_CHUNK_BYTES_MAX_REQUEST, BACKUP_CHUNK_BYTES_MIN } from "../backup/backup_rpcs.ts";
import {
  formatSocketAddress,
  isUnspecifiedAddress,
  parseIpAddress,
  parseSocketAddress,
} from "../transport/socket_address.ts";
import { OFFER_URLS_MAX } from "./snapshot_offer.ts";

/** The snapshot knobs read from the environment; absent ones stay at their defaults. */
export interface SnapshotSettings {
  chunkBytes?: number;
  intervalEntries?: number;
}

/** Raised for a knob whose value is not usable; the message names it and the range. */
export class SnapshotSettingsError extends Error {
  override name = "SnapshotSettingsError";
}

/** Reads `BLIXARD_SNAPSHOT_CHUNK_BYTES` and `BLIXARD_SNAPSHOT_INTERVAL_ENTRIES`. */
export function snapshotSettingsFromEnv(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): SnapshotSettings {
  const settings: SnapshotSettings = {};
  const chunkBytes = integerVariable(
    env,
    "BLIXARD_SNAPSHOT_CHUNK_BYTES",
    BACKUP_CHUNK_BYTES_MIN,
    BACKUP_CHUNK_BYTES_MAX_REQUEST,
  );
  if (chunkBytes !== undefined) settings.chunkBytes = chunkBytes;
  const interval = integerVariable(env, "BLIXARD_SNAPSHOT_INTERVAL_ENTRIES", 1, 2 ** 31);
  if (interval !== undefined) settings.intervalEntries = interval;
  return settings;
}

function integerVariable(
  env: (name: string) => string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const text = env(name);
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new SnapshotSettingsError(
      `${name}=${JSON.stringify(text)} is not an integer from ${min} to ${max}; unset it or fix it`,
    );
  }
  return value;
}

/**
 * The URLs of this node's HTTP server for followers: its bound host, or, when it listens
 * on every address, the hosts of its advertised P2P addresses (where members reach it).
 */
export function snapshotHttpUrls(
  http: { host: string; port: number },
  advertised: readonly string[],
): string[] {
  const bound = parseIpAddress(http.host);
  const hosts = bound === null || isUnspecifiedAddress(bound)
    ? advertised.flatMap((address) => parseSocketAddress(address) ?? [])
    : [bound];
  const urls = hosts.map((host) => `http://${formatSocketAddress({ ...host, port: http.port })}/`);
  return [...new Set(urls)].slice(0, OFFER_URLS_MAX);
}
