/**
 * A small disk that can be filled: a tmpfs the harness mounts on a directory of its own,
 * for one node's data dir. `fill()` writes a filler file until the disk refuses
 * (`ENOSPC`), `free()` removes it, and `unmount()` (in `finally`, and from the signal
 * handlers) unmounts and removes the directory even when the run failed.
 *
 * @module
 */

import { runChecked, runCommand } from "./system_command.ts";

/** Size of one write of the filler: small enough to leave little room at the end. */
const FILL_CHUNK_BYTES = 64 * 1024;

/** A mounted tmpfs. */
export class TmpfsDisk {
  /** The mount point; put the data dir below it. */
  readonly path: string;
  readonly sizeBytes: number;
  #mounted = true;

  private constructor(path: string, sizeBytes: number) {
    this.path = path;
    this.sizeBytes = sizeBytes;
  }

  /** Mounts a tmpfs of `sizeBytes` on a new temp directory. */
  static async mount(sizeBytes: number): Promise<TmpfsDisk> {
    const path = Deno.makeTempDirSync({ prefix: `blixard-chaos-disk-${Deno.pid}-` });
    try {
      await runChecked("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", path]);
    } catch (error) {
      Deno.removeSync(path);
      throw error;
    }
    return new TmpfsDisk(path, sizeBytes);
  }

  get #fillerPath(): string {
    return `${this.path}/filler`;
  }

  /** Writes a filler until the disk is full; returns the bytes written. */
  async fill(): Promise<number> {
    const chunk = new Uint8Array(FILL_CHUNK_BYTES);
    const file = await Deno.open(this.#fillerPath, { create: true, append: true });
    let written = 0;
    try {
      // Bounded: the disk holds at most sizeBytes.
      for (let i = 0; i <= this.sizeBytes / FILL_CHUNK_BYTES + 1; i++) {
        try {
          written += await file.write(chunk);
        } catch (error) {
          if (/ENOSPC|No space left/i.test(String(error))) break;
          throw error;
        }
      }
    } finally {
      file.close();
    }
    return written;
  }

  /** Removes the filler: the disk has room again. */
  async free(): Promise<void> {
    await Deno.remove(this.#fillerPath).catch(() => {});
  }

  /** Unmounts the tmpfs and removes its directory. Safe to call twice. */
  async unmount(): Promise<void> {
    if (!this.#mounted) return;
    this.#mounted = false;
    const result = await runCommand("umount", [this.path]);
    if (result.code !== 0) {
      // Busy: a process still has a file open there; a lazy unmount finishes when it closes.
      await runCommand("umount", ["-l", this.path]);
    }
    await Deno.remove(this.path, { recursive: true }).catch(() => {});
  }
}
