import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import {
  encodeFrame,
  encodeFrames,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameError,
} from "./frame_codec.ts";

/** Values msgpack carries unchanged: `-0` (sent as integer 0) and `__proto__` keys are not. */
const leaf = fc.oneof(
  fc.integer(),
  fc.double().filter((number) => !Object.is(number, -0)),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 64 }),
);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string().filter((key) => key !== "__proto__"), tie("value"), {
      maxKeys: 5,
      noNullPrototype: true,
    }),
  ),
}));

/** Cuts `bytes` at the given points, as a network would. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

function header(payloadBytes: number): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(bytes.buffer).setUint32(0, payloadBytes, false);
  return bytes;
}

Deno.test("FrameDecoder returns every encoded value, however the bytes are chunked", () => {
  fc.assert(
    fc.property(
      fc.array(value, { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (values, cuts) => {
        const decoder = new FrameDecoder();
        const decoded = split(encodeFrames(values), cuts).flatMap((chunk) => decoder.push(chunk));
        decoder.finish();
        assert.deepStrictEqual(decoded, values);
        assert.equal(decoder.bufferedBytes, 0);
      },
    ),
  );
});

Deno.test("encodeFrames() writes the same bytes as encodeFrame() for each value in turn", () => {
  fc.assert(
    fc.property(fc.array(value, { maxLength: 5 }), (values) => {
      const one = encodeFrames(values);
      const each = values.map((item) => encodeFrame(item));
      assert.deepStrictEqual(one, new Uint8Array(Buffer.concat(each)));
    }),
  );
});

Deno.test("FrameDecoder gives binary back as a plain Uint8Array, also from a Buffer chunk", () => {
  const bytes = new Uint8Array([0, 1, 2, 255]);
  const [decoded] = new FrameDecoder().push(Buffer.from(encodeFrame({ data: bytes })));
  assert.deepStrictEqual(decoded, { data: bytes });
  const data = (decoded as { data: Uint8Array }).data;
  assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype);
});

Deno.test("FrameDecoder refuses an oversize frame from its length prefix alone", () => {
  const decoder = new FrameDecoder({ frameBytesMax: 1024 });
  // Only the 4-byte prefix has arrived: the refusal cannot have needed the payload.
  assert.throws(
    () => decoder.push(header(0xffff_ffff)),
    (error) => error instanceof FrameError && error.code === "frame_too_large",
  );
  assert.equal(decoder.bufferedBytes, 0);
});

Deno.test("FrameDecoder accepts a frame of exactly frameBytesMax and refuses one byte more", () => {
  const payload = "x".repeat(100);
  const frame = encodeFrame(payload);
  const payloadBytes = frame.length - FRAME_HEADER_BYTES;
  assert.deepStrictEqual(new FrameDecoder({ frameBytesMax: payloadBytes }).push(frame), [payload]);
  assert.throws(
    () => new FrameDecoder({ frameBytesMax: payloadBytes - 1 }).push(frame.subarray(0, 4)),
    (error) => error instanceof FrameError && error.code === "frame_too_large",
  );
});

Deno.test("encodeFrame() refuses a value whose encoding exceeds frameBytesMax", () => {
  assert.throws(
    () => encodeFrame(new Uint8Array(2048), { frameBytesMax: 1024 }),
    (error) => error instanceof FrameError && error.code === "frame_too_large",
  );
});

Deno.test("FrameDecoder.finish() reports a frame cut short, in its prefix or its payload", () => {
  const frame = encodeFrame({ term: 7, entries: ["a", "b"] });
  for (const cut of [2, frame.length - 1]) {
    const decoder = new FrameDecoder();
    assert.deepStrictEqual(decoder.push(frame.subarray(0, cut)), []);
    assert.throws(
      () => decoder.finish(),
      (error) => error instanceof FrameError && error.code === "truncated",
    );
  }
});

Deno.test("FrameDecoder reports a payload that is not one msgpack value as malformed", () => {
  // 0x92 announces a two-element array, but only one element follows.
  const cases = [[0x92, 0x01], [0x01, 0x02], []];
  for (const payload of cases) {
    const decoder = new FrameDecoder();
    assert.throws(
      () => decoder.push(new Uint8Array([...header(payload.length), ...payload])),
      (error) => error instanceof FrameError && error.code === "malformed",
      `payload ${JSON.stringify(payload)}`,
    );
  }
});

Deno.test("FrameDecoder refuses all input after a malformed frame", () => {
  const decoder = new FrameDecoder();
  assert.throws(() => decoder.push(new Uint8Array([...header(2), 0x92, 0x01])), FrameError);
  assert.throws(() => decoder.push(encodeFrame("fine")), FrameError);
});
