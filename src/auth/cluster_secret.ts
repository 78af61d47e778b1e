/**
 * `ClusterSecret`: the shared secret of a cluster (DESIGN.md section 8), loaded from
 * `--cluster-secret-file PATH`, `BLIXARD_CLUSTER_SECRET_FILE` or `BLIXARD_CLUSTER_SECRET`.
 *
 * The secret is 32 random bytes, written as 64 hex digits or as their 44 base64
 * characters (`blixard cluster new-secret FILE` writes one): a file holding the text and a
 * newline (editors add one, and it is dropped) and `BLIXARD_CLUSTER_SECRET` holding the
 * text are the same secret. Anything else is refused: `/bootstrap` carries an HMAC under
 * the secret over public data, so a secret that could be guessed could be tested offline.
 * A file must be a regular file that neither group nor others may access (like an SSH
 * private key), because whoever reads it can join the cluster.
 *
 * Once loaded, the bytes live only inside a non-extractable WebCrypto HMAC-SHA256 key:
 * nothing can print, log or serialise them, and verification compares in constant time.
 * A node loads its secret `shareable`, keeping a copy of the bytes for one purpose: handing
 * them to a joiner that presented a valid invite ticket (`shareableBytes`).
 *
 * @module
 */

/** Bytes of a cluster secret: 256 random bits, beyond any offline guessing. */
export const CLUSTER_SECRET_BYTES = 32;
/** Fewest bytes of HMAC key material `ClusterSecret.fromBytes` takes. */
export const CLUSTER_SECRET_BYTES_MIN = 16;
/** Most bytes a secret file may hold: a larger file is not a secret but the wrong file. */
export const CLUSTER_SECRET_BYTES_MAX = 4096;
/** Bytes of an HMAC-SHA256 output. */
export const MAC_BYTES = 32;

/** The domain label of a secret's fingerprint (see `ClusterSecret.fingerprint`). */
export const FINGERPRINT_LABEL = "blixard-secret-fingerprint-v1";

/** The variable that holds the secret itself (there is no flag: `ps` would show it). */
export const CLUSTER_SECRET_VARIABLE = "BLIXARD_CLUSTER_SECRET";

/** What a secret is, said once for every message about it. */
const SECRET_FORMAT = `${CLUSTER_SECRET_BYTES} random bytes written as 64 hex digits or 44 ` +
  "base64 characters";
/** What a secret's file must do, said once for every message about it. */
const HOW_TO_WRITE = `it must hold ${SECRET_FORMAT}, readable only by the node's user: ` +
  "create one with blixard cluster new-secret FILE and copy that file to every node";

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

/**
 * A secret that is set but empty (`BLIXARD_CLUSTER_SECRET=""`, an empty file): a usage
 * error (exit 2), since `"$(cat /missing)"` must not silently start a node without one.
 */
export class EmptyClusterSecretError extends ClusterSecretError {
  /** Always `"EmptyClusterSecretError"`. */
  override name = "EmptyClusterSecretError";
}

/** The cluster secret, as an HMAC-SHA256 key. */
export class ClusterSecret {
  readonly #key: CryptoKey;
  readonly #shareable: Uint8Array | null;

  private constructor(key: CryptoKey, shareable: Uint8Array | null) {
    this.#key = key;
    this.#shareable = shareable;
  }

  /**
   * A secret of key material `bytes` (16–4096 of them; `loadClusterSecret` gives exactly
   * `CLUSTER_SECRET_BYTES` random ones, tests may use text).
   */
  static async fromBytes(
    bytes: Uint8Array,
    options: { shareable?: boolean } = {},
  ): Promise<ClusterSecret> {
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
    return new ClusterSecret(key, options.shareable === true ? new Uint8Array(bytes) : null);
  }

  /**
   * A copy of the secret's bytes, for a joiner admitted by an invite ticket over an
   * encrypted connection; `null` unless the secret was loaded `shareable`.
   */
  shareableBytes(): Uint8Array | null {
    return this.#shareable === null ? null : new Uint8Array(this.#shareable);
  }

  /** HMAC-SHA256 of `message` under the secret (32 bytes). */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign("HMAC", this.#key, new Uint8Array(message)));
  }

  /**
   * The secret's fingerprint: lowercase hex of HMAC-SHA256(secret, `FINGERPRINT_LABEL`).
   * It names the secret without revealing it (the secret has 256 random bits, so it cannot
   * be guessed back from it), and the label keeps it apart from every other MAC.
   */
  async fingerprint(): Promise<string> {
    const mac = await this.sign(new TextEncoder().encode(FINGERPRINT_LABEL));
    return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
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
export async function loadClusterSecret(
  source: ClusterSecretSource,
  options: { shareable?: boolean } = {},
): Promise<ClusterSecret> {
  const text = source.kind === "file"
    ? await readSecretFile(source)
    : new TextEncoder().encode(source.text.reveal());
  const subject = source.kind === "file"
    ? `${describeClusterSecretSource(source)}: the file`
    : source.origin;
  const advice = source.kind === "file"
    ? HOW_TO_WRITE
    : `set it to ${SECRET_FORMAT} (blixard cluster new-secret FILE writes one)`;
  const trimmed = withoutTrailingNewline(text);
  if (trimmed.length === 0) throw new EmptyClusterSecretError(`${subject} is empty: ${advice}`);
  const bytes = decodeSecretText(trimmed);
  if (bytes === null) {
    throw new ClusterSecretError(
      `${subject} is not a cluster secret (${trimmed.length} characters): ${advice}`,
    );
  }
  return await ClusterSecret.fromBytes(bytes, options);
}

/**
 * The 32 bytes that `text` writes as 64 hex digits or as base64 (44 characters with its
 * `=`, or 43 without), or `null` when it is neither.
 */
export function decodeSecretText(text: Uint8Array): Uint8Array | null {
  const ascii = String.fromCharCode(...text.subarray(0, 128));
  if (text.length === CLUSTER_SECRET_BYTES * 2 && /^[0-9a-fA-F]+$/.test(ascii)) {
    return Uint8Array.from(
      { length: CLUSTER_SECRET_BYTES },
      (_, i) => parseInt(ascii.slice(2 * i, 2 * i + 2), 16),
    );
  }
  if (/^[A-Za-z0-9+/]{43}=?$/.test(ascii) && text.length <= 44) {
    const decoded = Uint8Array.from(atob(ascii.padEnd(44, "=")), (char) => char.charCodeAt(0));
    if (decoded.length === CLUSTER_SECRET_BYTES) return decoded;
  }
  return null;
}

/** A fresh secret as its file holds it: 32 random bytes in base64, and a newline. */
export function newSecretText(): string {
  return secretFileText(crypto.getRandomValues(new Uint8Array(CLUSTER_SECRET_BYTES)));
}

/** The secret `bytes` as its file holds them: base64, and a newline. */
export function secretFileText(bytes: Uint8Array): string {
  return `${btoa(String.fromCharCode(...bytes))}\n`;
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
  return bytes;
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
