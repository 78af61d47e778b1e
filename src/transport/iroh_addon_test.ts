import { strict as assert } from "node:assert";
import { IROH_ADDON_PACKAGES, irohAddonFile, loadIrohBinding } from "./iroh_addon.ts";

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
  const stat = Deno.statSync(new URL(`../../node_modules/${file}`, import.meta.url));
  assert.ok(stat.isFile && stat.size > 0, file);
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
