import assert from "node:assert/strict";
import { unavailableReason } from "./system_command.ts";
import { TmpfsDisk } from "./tmpfs_disk.ts";

const reason = await unavailableReason("mount");
if (reason !== null) console.warn(`tmpfs_disk_test: skipped: ${reason}`);

Deno.test({
  name:
    "TmpfsDisk refuses writes once filled, takes them again once freed, and unmount() removes it",
  ignore: reason !== null,
  fn: async () => {
    const disk = await TmpfsDisk.mount(1024 * 1024);
    try {
      assert.ok(await disk.fill() > 0);
      await assert.rejects(
        Deno.writeFile(`${disk.path}/more`, new Uint8Array(64 * 1024)),
        /No space left|ENOSPC|os error 28/,
      );
      await disk.free();
      await Deno.writeFile(`${disk.path}/more`, new Uint8Array(64 * 1024));
    } finally {
      await disk.unmount();
    }
    await assert.rejects(Deno.stat(disk.path), Deno.errors.NotFound);
  },
});
