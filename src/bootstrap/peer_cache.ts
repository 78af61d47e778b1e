/**
 * `PeerCache`: the verified peer identities that the CLI and `BlixardClient` keep between
 * runs, in `$XDG_CACHE_HOME/blixard/peers.json` (default `~/.cache/blixard/peers.json`),
 * keyed by the peer as written (`host:port` or URL). A command whose `--peer` is in it
 * dials the cached key at once and skips the `/bootstrap` fetch; `findSeed` fetches again,
 * once, when that key no longer answers there, and replaces the entry.
 *
 * An entry is trusted as it is: it was verified (signature included, with a secret) when
 * it was written, and the key it names is checked again by every connection. The file is
 * the user's own (directory 0700, file 0600, replaced atomically); a file that cannot be
 * read or does not parse counts as empty, and a cache that cannot be written is skipped:
 * the cache only ever saves a round trip.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import type { SeedCache } from "./bootstrap_client.ts";
import { type BootstrapInfo, BootstrapInfoSchema } from "./bootstrap_info.ts";

const logger = getLogger(["blixard", "bootstrap"]);

/** The file's name inside the cache directory. */
export const PEER_CACHE_FILE_NAME = "peers.json";
/** Most entries kept; the least recently verified go first. */
export const PEER_CACHE_ENTRIES_MAX = 64;
/** Largest file read: a bigger one is not ours, and is ignored. */
export const PEER_CACHE_FILE_BYTES_MAX = 256 * 1024;
const ENTRY_KEY_CHARS_MAX = 2048;

const fileSchema = lazySchema(() =>
  z.strictObject({
    version: z.literal(1),
    peers: z.record(
      z.string().check(z.minLength(1), z.maxLength(ENTRY_KEY_CHARS_MAX)),
      z.strictObject({ info: z.unknown(), verified_at: z.string().check(z.maxLength(64)) }),
    ),
  })
);

interface Entry {
  info: BootstrapInfo;
  /** ISO 8601: when the identity was last fetched and verified. */
  verifiedAt: string;
}

/**
 * Where the cache lives for `env`: `$XDG_CACHE_HOME/blixard/peers.json`, else
 * `$HOME/.cache/blixard/peers.json`; `null` when neither variable is an absolute path.
 */
export function defaultPeerCachePath(env: Record<string, string | undefined>): string | null {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg.startsWith("/")) return `${xdg}/blixard/${PEER_CACHE_FILE_NAME}`;
  const home = env.HOME;
  if (home !== undefined && home.startsWith("/")) {
    return `${home}/.cache/blixard/${PEER_CACHE_FILE_NAME}`;
  }
  return null;
}

/** The cache, loaded in memory; `save()` writes it back when it changed. */
export class PeerCache implements SeedCache {
  readonly path: string;
  readonly #entries: Map<string, Entry>;
  #changed = false;

  private constructor(path: string, entries: Map<string, Entry>) {
    this.path = path;
    this.#entries = entries;
  }

  /** Reads the cache at `path`; a missing, oversized or malformed file gives an empty one. */
  static async open(path: string): Promise<PeerCache> {
    return new PeerCache(path, await readEntries(path));
  }

  /** How many identities are cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** The identity `entry` gave when it was last verified, or `null`. */
  lookup(entry: string): BootstrapInfo | null {
    return this.#entries.get(entry)?.info ?? null;
  }

  /** Keeps `info`, verified just now, for `entry`. */
  remember(entry: string, info: BootstrapInfo): void {
    if (entry.length > ENTRY_KEY_CHARS_MAX) return;
    this.#entries.delete(entry);
    this.#entries.set(entry, { info, verifiedAt: new Date().toISOString() });
    while (this.#entries.size > PEER_CACHE_ENTRIES_MAX) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#changed = true;
  }

  /** Drops `entry`. */
  forget(entry: string): void {
    this.#changed = this.#entries.delete(entry) || this.#changed;
  }

  /**
   * Writes the cache if it changed: directory 0700, file 0600, through a temporary file and
   * a rename so that a reader never sees half a file. A failure is logged and ignored.
   */
  async save(): Promise<void> {
    if (!this.#changed) return;
    const directory = this.path.slice(0, this.path.lastIndexOf("/")) || "/";
    const peers = Object.fromEntries(
      [...this.#entries].map(([key, entry]) => [key, {
        info: entry.info,
        verified_at: entry.verifiedAt,
      }]),
    );
    const temporary = `${this.path}.${Deno.pid}.tmp`;
    try {
      await Deno.mkdir(directory, { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(temporary, JSON.stringify({ version: 1, peers }) + "\n", {
        mode: 0o600,
      });
      // The mode of writeTextFile is masked by the umask and kept for an existing file.
      await Deno.chmod(temporary, 0o600);
      await Deno.rename(temporary, this.path);
      this.#changed = false;
    } catch (error) {
      await Deno.remove(temporary).catch(() => {});
      logger.debug("could not write the peer cache {path}: {error}", { path: this.path, error });
    }
  }
}

async function readEntries(path: string): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile || info.size > PEER_CACHE_FILE_BYTES_MAX) return entries;
    text = await Deno.readTextFile(path);
  } catch {
    return entries;
  }
  let parsed;
  try {
    parsed = fileSchema.safeParse(JSON.parse(text));
  } catch {
    parsed = null;
  }
  if (parsed?.success !== true) {
    logger.debug("ignored the peer cache {path}: not a cache this version wrote", { path });
    return entries;
  }
  for (const [key, value] of Object.entries(parsed.data.peers)) {
    const info = BootstrapInfoSchema.safeParse(value.info);
    if (info.success) entries.set(key, { info: info.data, verifiedAt: value.verified_at });
  }
  return entries;
}
