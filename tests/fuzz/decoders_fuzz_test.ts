/**
 * Every decoder of network input, fuzzed with 1,000 cases each (`decoder_targets.ts`):
 * each case ends in a value or the decoder's own one-line error, within its time, with
 * bounded heap growth. `deno task chaos --fuzz` runs 100,000 per decoder.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameError } from "../../src/transport/frame_codec.ts";
import { fuzzTargets, runFuzzTarget } from "./decoder_targets.ts";

const CASES_PER_TARGET = 1_000;

for (const target of await fuzzTargets()) {
  Deno.test(`fuzz: ${target.name} ends every one of ${CASES_PER_TARGET} malformed inputs in a value or a clear error`, async () => {
    const result = await runFuzzTarget(target, { numRuns: CASES_PER_TARGET });
    assert.equal(result.failure, null);
    assert.equal(result.runs, CASES_PER_TARGET);
  });
}

Deno.test("fuzz: a decoder that throws anything but its own error class is reported, with the input", async () => {
  const result = await runFuzzTarget({
    name: "crashing decoder",
    input: fc.uint8Array({ maxLength: 8 }),
    decode: (bytes) => {
      try {
        if (bytes.length > 2) throw new TypeError("cannot read properties of undefined");
        throw new FrameError("malformed", "frame is not valid msgpack");
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
      }
    },
  }, { numRuns: 200, seed: 7 });
  assert.match(result.failure ?? "", /TypeError: cannot read properties of undefined on /);
});
