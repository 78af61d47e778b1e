import assert from "node:assert/strict";
import { fromBindingBytes, toBindingBytes } from "./iroh.ts";

Deno.test("toBindingBytes and fromBindingBytes carry every byte value, and nothing for no bytes", () => {
  const bytes = Uint8Array.from({ length: 600 }, (_, index) => index % 256);
  const array = toBindingBytes(bytes);
  assert.equal(Array.isArray(array), true);
  assert.deepEqual(array.slice(250, 260), [250, 251, 252, 253, 254, 255, 0, 1, 2, 3]);
  assert.deepEqual(fromBindingBytes(array), bytes);
  assert.deepEqual(fromBindingBytes(toBindingBytes(new Uint8Array(0))), new Uint8Array(0));
});

Deno.test("fromBindingBytes reads an array with generic elements, as the binding makes them", () => {
  const array: number[] = [];
  (array as unknown[]).push({}); // forces generic elements, then replaced by numbers
  array[0] = 7;
  for (let value = 1; value < 256; value++) array.push(value);
  const bytes = fromBindingBytes(array);
  assert.equal(bytes.length, 256);
  assert.equal(bytes[0], 7);
  assert.equal(bytes[255], 255);
  assert.equal(bytes instanceof Uint8Array && !("readUInt8" in bytes), true);
});
