/**
 * The backup file: a header, the image in bounded chunks, and a SHA-256 checksum over the
 * whole, written atomically (temporary file in the same directory, fsync, rename, fsync of
 * the directory) with mode 0600, and read back as a stream, so that neither side holds the
 * whole state in memory.
 *
 * Layout (integers big-endian):
 *
 * ```
 * magic (8 bytes: 0x89 "BLXBAK" 0x0a) | format version (u16) | header length (u32) | header (JSON)
 * { chunk length (u32, 1…BACKUP_CHUNK_BYTES_MAX) | chunk bytes }*
 * 0 (u32, the end) | SHA-256 of every byte before it (32 bytes) | end of file
 * ```
 *
 * The magic's first byte is not ASCII and its last is a newline, as in PNG, so that a text
 * file or a file mangled by a line-ending conversion is told apart at once.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { createSha256 } from "../util/sha256.ts";
import { basename, dirname, join } from "node:path";
import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { bytesEqual } from "../state_machine/byte_keys.ts";
import { syncToDisk } from "../node/local_state/identity.ts";

/** The first bytes of every backup file. */
export const BACKUP_MAGIC = Uint8Array.of(0x89, 0x42, 0x4c, 0x58, 0x42, 0x41, 0x4b, 0x0a);
/** The file layout this build writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;
/** Largest chunk: bounds what a reader allocates for one length field it has not verified. */
export const BACKUP_CHUNK_BYTES_MAX = 4 * 1024 * 1024;
/** Largest header. */
const HEADER_BYTES_MAX = 64 * 1024;
const DIGEST_BYTES = 32;
/** Bytes read from the file at a time. */
const READ_BUFFER_BYTES = 1024 * 1024;

/** What a backup says about itself. */
export interface BackupHeader {
  /** The cluster the image was taken from. */
  clusterId: string;
  /** The applied index of the image: every write acknowledged before the backup began is in it. */
  index: number;
  /** The term of the entry at `index`. */
  term: number;
  /** When the image was taken (ISO 8601, the serving member's clock). */
  createdAt: string;
  /** The member that served it. */
  nodeId: number;
  /** The layout of the state machine tables in the image (`STATE_SCHEMA_VERSION`). */
  stateSchemaVersion: number;
}

const headerSchema = lazySchema(() =>
  z.strictObject({
    clusterId: z.string().check(z.minLength(1), z.maxLength(128)),
    index: z.int().check(z.minimum(0)),
    term: z.int().check(z.minimum(0)),
    createdAt: z.string().check(z.maxLength(64)),
    nodeId: z.int().check(z.minimum(1)),
    stateSchemaVersion: z.int().check(z.minimum(1)),
  })
);

/** A backup file that cannot be read: one line naming the file and the problem. */
export class BackupFileError extends Error {
  override name = "BackupFileError";
}

/** What `writeBackupFile` wrote. */
export interface BackupWritten {
  bytes: number;
  chunks: number;
}

/**
 * Writes `header` and `chunks` to `path` atomically: a temporary file next to it (mode
 * 0600), fsynced, renamed over `path`, and the directory fsynced. On any failure the
 * temporary file is removed and `path` is left as it was.
 */
export async function writeBackupFile(
  path: string,
  header: BackupHeader,
  chunks: AsyncIterable<Uint8Array>,
): Promise<BackupWritten> {
  const directory = dirname(path);
  const temporary = join(directory, `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  const file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o600 });
  const hash = createSha256();
  const written = { bytes: 0, chunks: 0 };
  const write = async (bytes: Uint8Array, options: { hashed: boolean } = { hashed: true }) => {
    if (options.hashed) hash.update(bytes);
    for (let offset = 0; offset < bytes.length;) {
      offset += await file.write(bytes.subarray(offset));
    }
    written.bytes += bytes.length;
  };
  let open = true;
  try {
    await write(encodeHeader(header));
    for await (const chunk of chunks) {
      if (chunk.length === 0 || chunk.length > BACKUP_CHUNK_BYTES_MAX) {
        throw new BackupFileError(
          `a backup chunk of ${chunk.length} bytes is outside 1…${BACKUP_CHUNK_BYTES_MAX}`,
        );
      }
      await write(u32(chunk.length));
      await write(chunk);
      written.chunks += 1;
    }
    await write(u32(0));
    await write(new Uint8Array(hash.digest()), { hashed: false });
    await file.sync();
    file.close();
    open = false;
    await Deno.rename(temporary, path);
    syncToDisk(directory);
    return written;
  } catch (error) {
    if (open) file.close();
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** The header's bytes: magic, format version, length, JSON. */
function encodeHeader(header: BackupHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(headerSchema.parse(header)));
  const bytes = new Uint8Array(BACKUP_MAGIC.length + 2 + 4 + json.length);
  bytes.set(BACKUP_MAGIC);
  const view = new DataView(bytes.buffer);
  view.setUint16(BACKUP_MAGIC.length, BACKUP_FORMAT_VERSION);
  view.setUint32(BACKUP_MAGIC.length + 2, json.length);
  bytes.set(json, BACKUP_MAGIC.length + 6);
  return bytes;
}

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}

/**
 * Reads `path` as a stream: `header` first, then each chunk from `chunks()`. The checksum
 * is checked when the last chunk has been read, so a caller that must not act on a damaged
 * file reads it through once (`verifyBackupFile`) before it uses the chunks. Reads are
 * synchronous: a restore loads the chunks inside one synchronous SQLite transaction.
 */
export class BackupReader {
  readonly path: string;
  readonly header: BackupHeader;
  readonly #input: ByteInput;

  private constructor(path: string, header: BackupHeader, input: ByteInput) {
    this.path = path;
    this.header = header;
    this.#input = input;
  }

  /** Opens `path` and reads its header. Throws `BackupFileError` naming the problem. */
  static open(path: string): BackupReader {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true });
    } catch (error) {
      throw new BackupFileError(`${path}: cannot open the backup: ${(error as Error).message}`);
    }
    const input = new ByteInput(path, file);
    try {
      return new BackupReader(path, readHeader(input), input);
    } catch (error) {
      input.close();
      throw error;
    }
  }

  /**
   * Every chunk, in order; then checks the end marker, the checksum and that nothing
   * follows. Closes the file when done or abandoned.
   */
  *chunks(): Generator<Uint8Array> {
    const input = this.#input;
    try {
      for (let number = 1;; number += 1) {
        const lengthBytes = input.read(4, `the length of chunk ${number}`);
        const length = new DataView(lengthBytes.buffer, lengthBytes.byteOffset).getUint32(0);
        if (length === 0) break;
        if (length > BACKUP_CHUNK_BYTES_MAX) {
          throw new BackupFileError(
            `${this.path} is damaged: chunk ${number} claims ${length} bytes, more than the ` +
              `${BACKUP_CHUNK_BYTES_MAX} a chunk may have; take the backup again`,
          );
        }
        yield input.read(length, `chunk ${number}`);
      }
      const expected = input.digest();
      const stored = input.read(DIGEST_BYTES, "the checksum", { hashed: false });
      if (!bytesEqual(expected, stored)) {
        throw new BackupFileError(
          `${this.path} is damaged: its SHA-256 checksum does not match its contents; ` +
            `take the backup again or use another copy`,
        );
      }
      const trailing = input.remaining();
      if (trailing > 0) {
        throw new BackupFileError(
          `${this.path} is damaged: ${trailing} bytes follow its checksum; use another copy`,
        );
      }
    } finally {
      input.close();
    }
  }
}

function readHeader(input: ByteInput): BackupHeader {
  const path = input.path;
  const start = input.readUpTo(BACKUP_MAGIC.length + 2 + 4);
  if (
    start.length < BACKUP_MAGIC.length || !bytesEqual(start.subarray(0, 8), BACKUP_MAGIC)
  ) {
    throw new BackupFileError(
      `${path} is not a Blixard backup (it does not start with the backup magic bytes)`,
    );
  }
  if (start.length < BACKUP_MAGIC.length + 6) {
    throw new BackupFileError(`${path} is truncated: it ends inside its header`);
  }
  const view = new DataView(start.buffer, start.byteOffset);
  const version = view.getUint16(BACKUP_MAGIC.length);
  if (version !== BACKUP_FORMAT_VERSION) {
    throw new BackupFileError(
      `${path} is a backup of format version ${version}; this build reads version ` +
        `${BACKUP_FORMAT_VERSION}: restore it with the blixard release that wrote it`,
    );
  }
  const length = view.getUint32(BACKUP_MAGIC.length + 2);
  if (length > HEADER_BYTES_MAX) {
    throw new BackupFileError(
      `${path} is damaged: its header claims ${length} bytes, more than ${HEADER_BYTES_MAX}`,
    );
  }
  const json = input.read(length, "the header");
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch {
    throw new BackupFileError(`${path} is damaged: its header is not JSON`);
  }
  const parsed = headerSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BackupFileError(
      `${path} is damaged: its header field ${issue?.path.join(".") || "(root)"} is invalid: ` +
        `${issue?.message ?? "invalid"}`,
    );
  }
  return parsed.data;
}

/** What `verifyBackupFile` found. */
export interface BackupSummary {
  header: BackupHeader;
  chunks: number;
  /** Bytes of chunk data. */
  chunkBytes: number;
}

/**
 * Reads `path` through once and checks its structure, its checksum, and each chunk with
 * `checkChunk` (which throws to refuse it). Throws `BackupFileError` naming the problem.
 */
export function verifyBackupFile(
  path: string,
  checkChunk: (chunk: Uint8Array, number: number) => void = () => {},
): BackupSummary {
  const reader = BackupReader.open(path);
  let chunks = 0;
  let chunkBytes = 0;
  for (const chunk of reader.chunks()) {
    chunks += 1;
    chunkBytes += chunk.length;
    checkChunk(chunk, chunks);
  }
  return { header: reader.header, chunks, chunkBytes };
}

/** A file read sequentially through a buffer, hashing what it hands out. */
class ByteInput {
  readonly path: string;
  readonly #file: Deno.FsFile;
  readonly #hash: Hash = createSha256();
  #buffer = new Uint8Array(0);
  #position = 0;
  #offset = 0;
  #ended = false;
  #closed = false;

  constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** Exactly `length` bytes; a file that ends first is truncated, and the error says where. */
  read(length: number, what: string, options = { hashed: true }): Uint8Array {
    const bytes = this.readUpTo(length, options);
    if (bytes.length < length) {
      throw new BackupFileError(
        `${this.path} is truncated: it ends inside ${what} (at byte ${this.#offset}); ` +
          `take the backup again or use another copy`,
      );
    }
    return bytes;
  }

  /** Up to `length` bytes: fewer only at the end of the file. */
  readUpTo(length: number, options = { hashed: true }): Uint8Array {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (this.#position === this.#buffer.length && !this.#fill()) break;
      const take = Math.min(length - filled, this.#buffer.length - this.#position);
      out.set(this.#buffer.subarray(this.#position, this.#position + take), filled);
      this.#position += take;
      filled += take;
    }
    const bytes = out.subarray(0, filled);
    if (options.hashed) this.#hash.update(bytes);
    this.#offset += filled;
    return bytes;
  }

  /** The SHA-256 of every hashed byte so far. */
  digest(): Uint8Array {
    return new Uint8Array(this.#hash.digest());
  }

  /** How many bytes are left (reads them). */
  remaining(): number {
    let count = this.#buffer.length - this.#position;
    this.#position = this.#buffer.length;
    while (this.#fill()) {
      count += this.#buffer.length;
      this.#position = this.#buffer.length;
    }
    return count;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }

  #fill(): boolean {
    if (this.#ended) return false;
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const read = this.#file.readSync(buffer);
    if (read === null) {
      this.#ended = true;
      return false;
    }
    this.#buffer = buffer.subarray(0, read);
    this.#position = 0;
    return true;
  }
}
