import { strict as assert } from "node:assert";
import {
  findIrohAddon,
  IROH_ADDON_PACKAGES,
  irohAddonFile,
  loadIrohBinding,
} from "./iroh_addon.ts";

Deno.test("irohAddonFile() names the addon file after its platform package", () => {
  assert.equal(
    irohAddonFile("x86_64-unknown-linux-gnu"),
    "@number0/iroh-linux-x64-gnu/iroh.linux-x64-gnu.node",
  );
  assert.equal(
    irohAddonFile("x86_64-pc-windows-msvc"),
    "@number0/iroh-win32-x64-msvc/iroh.win32-x64-msvc.node",
  );
  assert.equal(irohAddonFile("riscv64gc-unknown-linux-gnu"), null);
});

Deno.test("the addon of this build target is installed where the direct load looks for it", () => {
  // Without it every start would fall back to the package's slower CommonJS loader.
  assert.ok(
    IROH_ADDON_PACKAGES[Deno.build.target] !== undefined,
    `no addon package known for ${Deno.build.target}`,
  );
  const file = irohAddonFile(Deno.build.target)!;
  const path = findIrohAddon(file, new URL(".", import.meta.url));
  assert.equal(path, new URL(`../../node_modules/${file}`, import.meta.url).pathname);
  assert.ok(Deno.statSync(path!).size > 0, file);
});

Deno.test("findIrohAddon() takes the nearest node_modules at or above a folder, or none", () => {
  const root = Deno.makeTempDirSync({ prefix: "blixard-addon-" });
  try {
    const file = "@number0/iroh-test/iroh.test.node";
    Deno.mkdirSync(`${root}/a/node_modules/@number0/iroh-test`, { recursive: true });
    Deno.writeTextFileSync(`${root}/a/node_modules/${file}`, "x");
    Deno.mkdirSync(`${root}/a/b/c`, { recursive: true });
    const dir = (path: string) => new URL(`file://${root}/${path}/`);
    assert.equal(findIrohAddon(file, dir("a/b/c")), `${root}/a/node_modules/${file}`);
    assert.equal(findIrohAddon(file, dir("a")), `${root}/a/node_modules/${file}`);
    // A folder named like the file does not count.
    Deno.mkdirSync(`${root}/a/b/node_modules/${file}`, { recursive: true });
    assert.equal(findIrohAddon(file, dir("a/b/c")), `${root}/a/node_modules/${file}`);
    assert.equal(findIrohAddon("@number0/none/none.node", dir("a/b/c")), null);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("loadIrohBinding() gives the classes Blixard uses", () => {
  const binding = loadIrohBinding();
  for (
    const name of ["Endpoint", "EndpointAddr", "EndpointId", "RelayMode", "SecretKey"] as const
  ) {
    assert.equal(typeof binding[name], "function", name);
  }
  const key = binding.SecretKey.generate();
  assert.equal(key.public().toString().length, 64);
});
