import { strict as assert } from "node:assert";
import { createSha256, sha256 } from "./sha256.ts";

Deno.test("sha256() gives the FIPS 180-2 digest of 'abc'", () => {
  const expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  assert.equal(
    sha256("abc").toHex(),
    expected,
  );
  assert.equal(
    createSha256().update("a").update(new TextEncoder().encode("bc")).digest("hex"),
    expected,
  );
});

Deno.test("sha256() gives the FIPS 180-2 digests of '' and of the two-block 448-bit message", () => {
  assert.equal(
    sha256("").toHex(),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").toHex(),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256() digests small inputs, computed without node:crypto, as node:crypto does", () => {
  // Every length across the padding's edges (55/56 and 64 bytes) and the 4096-byte switch.
  const lengths = [...Array(200).keys(), 4095, 4096, 4097, 10_000];
  for (const length of lengths) {
    const input = new Uint8Array(length).map((_, i) => (i * 131 + length * 7) & 0xff);
    assert.equal(
      sha256(input).toHex(),
      createSha256().update(input).digest("hex"),
      `length ${length}`,
    );
  }
});
