import assert from "node:assert/strict";
import {
  BACKUP_CHUNK_BYTES_MAX,
  BACKUP_FORMAT_VERSION,
  BACKUP_MAGIC,
  BackupFileError,
  type BackupHeader,
  BackupReader,
  verifyBackupFile,
  writeBackupFile,
} from "./backup_file.ts";

const HEADER: BackupHeader = {
  clusterId: "4f7a0c1e-0000-4000-8000-000000000001",
  index: 1234,
  term: 5,
  createdAt: "2026-01-02T03:04:05.000Z",
  nodeId: 2,
  stateSchemaVersion: 1,
};

async function* chunksOf(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

function sampleChunks(): Uint8Array[] {
  return [1, 1000, 70_000, 3].map((length, i) => new Uint8Array(length).fill(i + 1));
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "blixard-backup-file-test-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function refusal(path: string): string {
  try {
    verifyBackupFile(path);
  } catch (error) {
    assert.ok(error instanceof BackupFileError, String(error));
    assert.ok(!error.message.includes("\n"), "one line");
    assert.ok(error.message.startsWith(path), error.message);
    return error.message;
  }
  assert.fail(`${path} was accepted`);
}

Deno.test("a written backup reads back: the same header and chunks, mode 0600, no temporary file", () =>
  withDir(async (dir) => {
    const path = `${dir}/b.bak`;
    const chunks = sampleChunks();
    const written = await writeBackupFile(path, HEADER, chunksOf(chunks));
    assert.equal(written.chunks, chunks.length);
    assert.equal(written.bytes, Deno.statSync(path).size);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["b.bak"]);
    const reader = BackupReader.open(path);
    assert.deepEqual(reader.header, HEADER);
    assert.deepEqual([...reader.chunks()], chunks);
    const bytes = Deno.readFileSync(path);
    assert.deepEqual(bytes.subarray(0, 8), BACKUP_MAGIC);
    assert.equal(new DataView(bytes.buffer).getUint16(8), BACKUP_FORMAT_VERSION);
  }));

Deno.test("writeBackupFile() leaves the old file and no temporary file when the stream fails", () =>
  withDir(async (dir) => {
    const path = `${dir}/b.bak`;
    Deno.writeTextFileSync(path, "older backup");
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10);
      throw new Error("the member went away");
    }
    await assert.rejects(writeBackupFile(path, HEADER, failing()), /the member went away/);
    assert.equal(Deno.readTextFileSync(path), "older backup");
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["b.bak"]);
  }));

Deno.test("verifyBackupFile() refuses every single flipped byte", () =>
  withDir(async (dir) => {
    const path = `${dir}/b.bak`;
    await writeBackupFile(path, HEADER, chunksOf([new Uint8Array(40).fill(7), new Uint8Array(9)]));
    const good = Deno.readFileSync(path);
    assert.equal(verifyBackupFile(path).chunks, 2);
    for (let offset = 0; offset < good.length; offset++) {
      const bad = good.slice();
      bad[offset]! ^= 0x10;
      Deno.writeFileSync(path, bad);
      refusal(path);
    }
  }));

Deno.test("verifyBackupFile() says a cut file is truncated, wherever it is cut", () =>
  withDir(async (dir) => {
    const path = `${dir}/b.bak`;
    await writeBackupFile(path, HEADER, chunksOf(sampleChunks()));
    const good = Deno.readFileSync(path);
    for (const length of [9, 20, 200, 1500, good.length - 40, good.length - 1]) {
      Deno.writeFileSync(path, good.subarray(0, length));
      assert.match(refusal(path), /is truncated: it ends inside/, `cut at ${length}`);
    }
  }));

Deno.test("verifyBackupFile() names a foreign file, another format version, and trailing bytes", () =>
  withDir(async (dir) => {
    const path = `${dir}/b.bak`;
    await writeBackupFile(path, HEADER, chunksOf(sampleChunks()));
    const good = Deno.readFileSync(path);
    Deno.writeTextFileSync(path, "SQLite format 3\0");
    assert.match(refusal(path), /is not a Blixard backup/);
    Deno.writeFileSync(path, new Uint8Array(0));
    assert.match(refusal(path), /is not a Blixard backup/);
    const otherVersion = good.slice();
    new DataView(otherVersion.buffer).setUint16(8, BACKUP_FORMAT_VERSION + 1);
    Deno.writeFileSync(path, otherVersion);
    assert.match(refusal(path), /is a backup of format version 2; this build reads version 1/);
    Deno.writeFileSync(path, new Uint8Array([...good, 0]));
    assert.match(refusal(path), /1 bytes follow its checksum/);
  }));

Deno.test("a chunk length beyond the limit is refused before anything is allocated for it", () =>
  withDir(async (dir) => {
    const path = `${dir}/b.bak`;
    await writeBackupFile(path, HEADER, chunksOf([new Uint8Array(5)]));
    const bytes = Deno.readFileSync(path);
    const headerLength = new DataView(bytes.buffer).getUint32(10);
    new DataView(bytes.buffer).setUint32(14 + headerLength, BACKUP_CHUNK_BYTES_MAX + 1);
    Deno.writeFileSync(path, bytes);
    assert.match(refusal(path), /chunk 1 claims \d+ bytes, more than the/);
    await assert.rejects(
      writeBackupFile(`${dir}/c.bak`, HEADER, chunksOf([new Uint8Array(0)])),
      /outside 1…/,
    );
  }));
