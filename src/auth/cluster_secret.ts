/**
 * `ClusterSecret`: the shared secret of a cluster (DESIGN.md section 8), loaded from
 * `--cluster-secret-file PATH`, `BLIXARD_CLUSTER_SECRET_FILE` or `BLIXARD_CLUSTER_SECRET`.
 *
 * The secret is the file's bytes (one trailing newline dropped, since editors add one), or
 * the variable's UTF-8 bytes: a file holding `s3cret…\n` and `BLIXARD_CLUSTER_SECRET=s3cret…`
 * are the same secret. It must have 16 to 4096 bytes, and a file must be a regular file that
 * neither group nor others may access (like an SSH private key), because whoever reads it
 * can join the cluster.
 *
 * Once loaded, the bytes live only inside a non-extractable WebCrypto HMAC-SHA256 key:
 * nothing can print, log or serialise them, and verification compares in constant time.
 *
 * @module
 */

/** Fewest bytes a secret may have: below 128 bits it could be guessed. */
export const CLUSTER_SECRET_BYTES_MIN = 16;
/** Most bytes a secret may have: a larger file is not a secret but the wrong file. */
export const CLUSTER_SECRET_BYTES_MAX = 4096;
/** Bytes of an HMAC-SHA256 output. */
export const MAC_BYTES = 32;

/** The variable that holds the secret itself (there is no flag: `ps` would show it). */
export const CLUSTER_SECRET_VARIABLE = "BLIXARD_CLUSTER_SECRET";

/** What a secret's file must do, said once for every message about it. */
const HOW_TO_WRITE = `write a random secret of ${CLUSTER_SECRET_BYTES_MIN}–` +
  `${CLUSTER_SECRET_BYTES_MAX} bytes to it, readable only by the node's user ` +
  "(e.g. head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE), the same file on every node";

/**
 * Text that holds a secret. It prints, logs and serialises as `[redacted]`, so a
 * configuration object that carries it can be shown whole.
 */
export class SecretText {
  readonly #text: string;

  /** Wraps `text`. */
  constructor(text: string) {
    this.#text = text;
  }

  /** The secret itself: pass it on, never into a message. */
  reveal(): string {
    return this.#text;
  }

  /** `[redacted]`. */
  toString(): string {
    return "[redacted]";
  }

  /** `[redacted]`. */
  toJSON(): string {
    return "[redacted]";
  }
}

/** Where a secret comes from. `origin` names the flag or variable for messages. */
export type ClusterSecretSource =
  | { readonly kind: "file"; readonly path: string; readonly origin: string }
  | { readonly kind: "value"; readonly text: SecretText; readonly origin: string };

/**
 * A secret that cannot be loaded. The message is one line naming the flag or variable, the
 * file (never the secret) and what to do.
 */
export class ClusterSecretError extends Error {
  /** Always `"ClusterSecretError"`. */
  override name = "ClusterSecretError";
}

/** The cluster secret, as an HMAC-SHA256 key. */
export class ClusterSecret {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** A secret of `bytes` (16–4096 of them, checked by the caller's loader). */
  static async fromBytes(bytes: Uint8Array): Promise<ClusterSecret> {
    if (bytes.length < CLUSTER_SECRET_BYTES_MIN || bytes.length > CLUSTER_SECRET_BYTES_MAX) {
      throw new RangeError(
        `a cluster secret has ${CLUSTER_SECRET_BYTES_MIN}–${CLUSTER_SECRET_BYTES_MAX} bytes, ` +
          `not ${bytes.length}`,
      );
    }
    // Copied: WebCrypto takes views of a plain ArrayBuffer only.
    const key = await crypto.subtle.importKey(
      "raw",
      new Uint8Array(bytes),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return new ClusterSecret(key);
  }

  /** HMAC-SHA256 of `message` under the secret (32 bytes). */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign("HMAC", this.#key, new Uint8Array(message)));
  }

  /** Whether `mac` is the HMAC of `message`; compares in constant time. */
  async verify(message: Uint8Array, mac: Uint8Array): Promise<boolean> {
    if (mac.length !== MAC_BYTES) return false;
    return await crypto.subtle.verify(
      "HMAC",
      this.#key,
      new Uint8Array(mac),
      new Uint8Array(message),
    );
  }
}

/** Loads the secret from `source`; rejects with `ClusterSecretError`. */
export async function loadClusterSecret(source: ClusterSecretSource): Promise<ClusterSecret> {
  const bytes = source.kind === "file"
    ? await readSecretFile(source)
    : new TextEncoder().encode(source.text.reveal());
  const subject = source.kind === "file"
    ? `${describeClusterSecretSource(source)}: the file`
    : source.origin;
  const advice = source.kind === "file"
    ? HOW_TO_WRITE
    : `set it to a random secret of ${CLUSTER_SECRET_BYTES_MIN}–${CLUSTER_SECRET_BYTES_MAX} bytes`;
  if (bytes.length === 0) throw new ClusterSecretError(`${subject} is empty: ${advice}`);
  if (bytes.length < CLUSTER_SECRET_BYTES_MIN || bytes.length > CLUSTER_SECRET_BYTES_MAX) {
    throw new ClusterSecretError(`${subject} holds ${bytes.length} bytes: ${advice}`);
  }
  return await ClusterSecret.fromBytes(bytes);
}

/**
 * Where the secret comes from, for messages and logs: `--cluster-secret-file PATH`,
 * `BLIXARD_CLUSTER_SECRET_FILE=PATH` or `BLIXARD_CLUSTER_SECRET` (never its value).
 */
export function describeClusterSecretSource(source: ClusterSecretSource): string {
  if (source.kind === "value") return source.origin;
  return `${source.origin}${source.origin.startsWith("--") ? " " : "="}${source.path}`;
}

/** The file's bytes without one trailing newline, after checking what it is. */
async function readSecretFile(
  source: ClusterSecretSource & { kind: "file" },
): Promise<Uint8Array> {
  const described = describeClusterSecretSource(source);
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(source.path);
    if (!info.isFile) {
      throw new ClusterSecretError(`${described}: not a regular file: ${HOW_TO_WRITE}`);
    }
    // Group or other access at all (not only reading) lets another user learn or replace it.
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
      throw new ClusterSecretError(
        `${described}: group or others may access it (mode ${mode}): run chmod 600 on it`,
      );
    }
    // The size is checked before reading: a wrong path must not make the node read a huge file.
    if (info.size > CLUSTER_SECRET_BYTES_MAX + 2) {
      throw new ClusterSecretError(
        `${described}: the file holds ${info.size} bytes, more than a secret's ` +
          `${CLUSTER_SECRET_BYTES_MAX}: is it the right file? ${HOW_TO_WRITE}`,
      );
    }
    bytes = await Deno.readFile(source.path);
  } catch (error) {
    if (error instanceof ClusterSecretError) throw error;
    throw new ClusterSecretError(
      `${described}: cannot read it (${readFailure(error)}): ${HOW_TO_WRITE}`,
      {
        cause: error,
      },
    );
  }
  return withoutTrailingNewline(bytes);
}

function readFailure(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, " ").slice(0, 200);
}

/** Drops one `\n` or `\r\n` at the end: the newline an editor or `echo` adds. */
export function withoutTrailingNewline(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end--;
  if (end < bytes.length && bytes[end - 1] === 0x0d) end--;
  return bytes.subarray(0, end);
}
