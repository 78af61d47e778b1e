import { strict as assert } from "node:assert";
import { createSha256, sha256 } from "./sha256.ts";

Deno.test("sha256() gives the FIPS 180-2 digest of 'abc'", () => {
  const expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  assert.equal(
    Array.from(sha256("abc"), (b) => b.toString(16).padStart(2, "0")).join(""),
    expected,
  );
  assert.equal(
    createSha256().update("a").update(new TextEncoder().encode("bc")).digest("hex"),
    expected,
  );
});
