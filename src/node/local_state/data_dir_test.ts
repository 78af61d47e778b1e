import assert from "node:assert/strict";
import { StartupError } from "../../util/errors.ts";
import { LOCK_FILE_NAME, openDataDir, restrictMode } from "./data_dir.ts";

async function withTempDir(body: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "blixard-data-dir-test-" });
  try {
    await body(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function listNames(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

function assertStartupError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof StartupError, `expected StartupError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

const DATA_DIR_MODULE = new URL("./data_dir.ts", import.meta.url).href;

Deno.test("openDataDir() creates a missing directory with mode 0700 holding only LOCK", async () => {
  await withTempDir(async (root) => {
    const path = `${root}/nested/data1`;
    const dataDir = await openDataDir(path);
    try {
      assert.equal(dataDir.path, path);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o700);
      assert.deepEqual(await listNames(path), [LOCK_FILE_NAME]);
      assert.equal(await Deno.readTextFile(`${path}/${LOCK_FILE_NAME}`), `${Deno.pid}\n`);
    } finally {
      await dataDir.release();
    }
  });
});

Deno.test("openDataDir() opens an existing directory and leaves its files alone", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(`${root}/blixard.db`, "state");
    const dataDir = await openDataDir(root);
    await dataDir.release();
    assert.deepEqual(await listNames(root), [LOCK_FILE_NAME, "blixard.db"]);
    assert.equal(await Deno.readTextFile(`${root}/blixard.db`), "state");
  });
});

Deno.test("openDataDir() refuses a path that is a file, naming it", async () => {
  await withTempDir(async (root) => {
    const path = `${root}/file`;
    await Deno.writeTextFile(path, "");
    await assert.rejects(
      openDataDir(path),
      assertStartupError(new RegExp(`^data dir ${path} is not a directory: `)),
    );
  });
});

Deno.test("openDataDir() reports a directory it cannot create, naming the path", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(`${root}/file`, "");
    const path = `${root}/file/data`;
    await assert.rejects(
      openDataDir(path),
      assertStartupError(
        new RegExp(`^data dir ${path} cannot be read \\(.+\\): choose another --data-dir$`),
      ),
    );
  });
});

Deno.test({
  name: "openDataDir() refuses a directory it cannot write to",
  // Root writes through any mode bits, so only another user can see this refusal.
  ignore: Deno.uid() === 0,
  fn: async () => {
    await withTempDir(async (root) => {
      const path = `${root}/read-only`;
      await Deno.mkdir(path, { mode: 0o500 });
      await assert.rejects(
        openDataDir(path),
        assertStartupError(new RegExp(`^data dir ${path} is not writable \\(`)),
      );
    });
  },
});

Deno.test("openDataDir() a second time fails naming the pid holding the lock", async () => {
  await withTempDir(async (root) => {
    const first = await openDataDir(root);
    try {
      await assert.rejects(
        openDataDir(root),
        assertStartupError(
          new RegExp(
            `^data dir ${root} is in use by another blixard process \\(pid ${Deno.pid}\\): ` +
              "stop that node or choose another --data-dir$",
          ),
        ),
      );
    } finally {
      await first.release();
    }
    const second = await openDataDir(root);
    await second.release();
  });
});

Deno.test("DataDir.release() may be called twice", async () => {
  await withTempDir(async (root) => {
    const dataDir = await openDataDir(root);
    await dataDir.release();
    await dataDir.release();
    const again = await openDataDir(root);
    await again.release();
  });
});

Deno.test("openDataDir() in another process fails while this process holds the lock", async () => {
  await withTempDir(async (root) => {
    const dataDir = await openDataDir(root);
    try {
      const code = `
        import { openDataDir } from ${JSON.stringify(DATA_DIR_MODULE)};
        try { await openDataDir(${JSON.stringify(root)}); console.log("opened"); }
        catch (error) { console.log(error.message); }
      `;
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", code],
        stdin: "null",
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.match(
        new TextDecoder().decode(output.stdout),
        new RegExp(`in use by another blixard process \\(pid ${Deno.pid}\\)`),
      );
    } finally {
      await dataDir.release();
    }
  });
});

Deno.test("openDataDir() takes over the lock of a process that was killed", async () => {
  await withTempDir(async (root) => {
    const code = `
      import { openDataDir } from ${JSON.stringify(DATA_DIR_MODULE)};
      await openDataDir(${JSON.stringify(root)});
      console.log("locked");
      await new Promise(() => setInterval(() => {}, 1000));
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const { value } = await reader.read();
      assert.equal(value, "locked\n");
      await reader.cancel();
      const holderPid = (await Deno.readTextFile(`${root}/${LOCK_FILE_NAME}`)).trim();
      assert.equal(holderPid, String(child.pid));
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    const dataDir = await openDataDir(root);
    assert.equal(await Deno.readTextFile(`${root}/${LOCK_FILE_NAME}`), `${Deno.pid}\n`);
    await dataDir.release();
  });
});

Deno.test("openDataDir() is not fooled by a LOCK file left with a pid", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(`${root}/${LOCK_FILE_NAME}`, "4194303\n");
    const dataDir = await openDataDir(root);
    assert.equal(await Deno.readTextFile(`${root}/${LOCK_FILE_NAME}`), `${Deno.pid}\n`);
    await dataDir.release();
  });
});

Deno.test("openDataDir() refuses a dir that group or others may write, saying the chmod to run", async () => {
  await withTempDir(async (root) => {
    for (const mode of [0o777, 0o720, 0o702, 0o1777]) {
      const path = `${root}/data-${mode.toString(8)}`;
      await Deno.mkdir(path);
      await Deno.chmod(path, mode);
      await assert.rejects(
        openDataDir(path),
        assertStartupError(
          new RegExp(
            `^data dir ${path} is writable by group or others \\(mode 0${
              (mode & 0o777).toString(8)
            }\\): run chmod 700 ${path}$`,
          ),
        ),
      );
      assert.deepEqual(await listNames(path), [], "nothing written");
    }
  });
});

Deno.test("openDataDir() narrows a dir that group or others may only read to 0700", async () => {
  await withTempDir(async (root) => {
    const path = `${root}/data`;
    await Deno.mkdir(path);
    await Deno.chmod(path, 0o755);
    const dataDir = await openDataDir(path);
    try {
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o700);
    } finally {
      await dataDir.release();
    }
  });
});

Deno.test("restrictMode() narrows a file open to others and reports its old mode; a private or missing one is left alone", async () => {
  await withTempDir(async (root) => {
    const path = `${root}/blixard.db`;
    await Deno.writeTextFile(path, "x");
    await Deno.chmod(path, 0o644);
    assert.equal(restrictMode(path, 0o600), "0644");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal(restrictMode(path, 0o600), null);
    assert.equal(restrictMode(`${root}/missing`, 0o600), null);
  });
});
