/**
 * SHA-256: one-shot digests of small inputs computed here, everything else through
 * `node:crypto`, loaded on first use.
 *
 * Only invites and backups hash, never a plain start, yet a static `import "node:crypto"`
 * made every start load Deno's Node-layer crypto (about 10 ms of CPU, docs/benchmarks.md,
 * "Issue 13: where each target stands"). `process.getBuiltinModule` loads it synchronously
 * on the first call, so the callers stay synchronous. A node started with `--join TICKET`
 * checks the ticket's checksum before anything else, on the critical path of its join: a
 * few hundred bytes, which the block function below digests in microseconds, without
 * loading `node:crypto` at all (docs/benchmarks.md, "zod/mini everywhere in src/, and the
 * ticket's checksum without node:crypto"). WebCrypto would need no module either, but it is asynchronous only.
 *
 * @module
 */

import process from "node:process";
import type { Hash } from "node:crypto";

/** Inputs up to this size are digested here rather than by `node:crypto`. */
const SMALL_INPUT_BYTES_MAX = 4096;

/** A SHA-256 hash to feed with `update()` and finish with `digest()`. */
export function createSha256(): Hash {
  return process.getBuiltinModule("node:crypto").createHash("sha256");
}

/** The SHA-256 digest of `bytes`. */
export function sha256(bytes: Uint8Array | string): Uint8Array {
  const input = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  if (input.length <= SMALL_INPUT_BYTES_MAX) return sha256Blocks(input);
  return new Uint8Array(createSha256().update(input).digest());
}

/** FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
// deno-fmt-ignore: eight words a row, as FIPS 180-4 prints them
const ROUND_CONSTANTS = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** FIPS 180-4 section 5.3.3: the initial hash value. */
// deno-fmt-ignore
const INITIAL_HASH = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/** SHA-256 of `input` by FIPS 180-4 sections 5.1.1 (padding) and 6.2.2 (the blocks). */
function sha256Blocks(input: Uint8Array): Uint8Array {
  const blocks = Math.ceil((input.length + 9) / 64);
  const padded = new Uint8Array(blocks * 64);
  padded.set(input);
  padded[input.length] = 0x80;
  const view = new DataView(padded.buffer);
  const bits = input.length * 8;
  view.setUint32(padded.length - 8, Math.floor(bits / 0x1_0000_0000));
  view.setUint32(padded.length - 4, bits >>> 0);

  const hash = Uint32Array.from(INITIAL_HASH);
  const schedule = new Uint32Array(64);
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let t = 0; t < 16; t++) schedule[t] = view.getUint32(offset + t * 4);
    for (let t = 16; t < 64; t++) {
      const w15 = schedule[t - 15]!;
      const w2 = schedule[t - 2]!;
      const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3);
      const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10);
      schedule[t] = schedule[t - 16]! + s0 + schedule[t - 7]! + s1;
    }
    let [a, b, c, d, e, f, g, h] = hash as unknown as number[];
    for (let t = 0; t < 64; t++) {
      const t1 = h! + (rotr(e!, 6) ^ rotr(e!, 11) ^ rotr(e!, 25)) + ((e! & f!) ^ (~e! & g!)) +
        ROUND_CONSTANTS[t]! + schedule[t]!;
      const t2 = (rotr(a!, 2) ^ rotr(a!, 13) ^ rotr(a!, 22)) + ((a! & b!) ^ (a! & c!) ^ (b! & c!));
      h = g;
      g = f;
      f = e;
      e = (d! + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    hash[0]! += a!;
    hash[1]! += b!;
    hash[2]! += c!;
    hash[3]! += d!;
    hash[4]! += e!;
    hash[5]! += f!;
    hash[6]! += g!;
    hash[7]! += h!;
  }
  const digest = new Uint8Array(32);
  const out = new DataView(digest.buffer);
  hash.forEach((word, i) => out.setUint32(i * 4, word));
  return digest;
}
