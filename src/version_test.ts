import assert from "node:assert/strict";
import { VERSION } from "./version.ts";

Deno.test("VERSION is a semantic version equal to the version in package.json", async () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+$/);
  const packageJson = JSON.parse(
    await Deno.readTextFile(new URL("../package.json", import.meta.url)),
  ) as { version: unknown };
  assert.equal(packageJson.version, VERSION);
});
