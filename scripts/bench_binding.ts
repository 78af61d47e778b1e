/**
 * What one crossing of the Iroh binding costs on this machine's JS thread, by size: the
 * synchronous part of `FramedStream.sendBatch` (encoding, the `number[]` copy, and the
 * binding's conversion of that array into a Rust `Vec<u8>`), and the receiver's read of
 * the same frames (the binding's `Vec<u8>` → `number[]`, then `Uint8Array`), over two
 * endpoints on loopback in this process.
 *
 * Usage: deno run -A scripts/bench_binding.ts [--writes 200]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { withStreamPair } from "../src/transport/testing.ts";
import { fromBindingBytes, toBindingBytes } from "../src/transport/iroh.ts";

const SIZES = [16, 256, 1024, 4096, 16384, 65536];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { writes: { type: "string", default: "200" } },
  });
  const writes = Number(values.writes);
  await withStreamPair(async (sender, receiver) => {
    console.log(
      "| payload bytes | send, sync µs/call | ns/byte | receive µs/frame | copies only, µs |",
    );
    console.log("| ---: | ---: | ---: | ---: | ---: |");
    for (const size of SIZES) {
      const payload = new Uint8Array(size).fill(7);
      let sendMs = 0;
      let receiveMs = 0;
      for (let i = 0; i < writes; i++) {
        const startMs = performance.now();
        const sent = sender.send(payload);
        sendMs += performance.now() - startMs;
        const receiveStartMs = performance.now();
        await receiver.receive();
        receiveMs += performance.now() - receiveStartMs;
        await sent;
      }
      // The JS-side copies alone, for comparison with the binding's own conversion.
      const copyStartMs = performance.now();
      for (let i = 0; i < writes; i++) fromBindingBytes(toBindingBytes(payload));
      const copyMs = performance.now() - copyStartMs;
      const sendUs = sendMs * 1000 / writes;
      console.log(
        `| ${size} | ${sendUs.toFixed(1)} | ${(sendUs * 1000 / size).toFixed(0)} | ${
          (receiveMs * 1000 / writes).toFixed(1)
        } | ${(copyMs * 1000 / writes).toFixed(1)} |`,
      );
    }
  });
}
