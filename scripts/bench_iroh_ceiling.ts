/**
 * `deno run -A scripts/bench_iroh_ceiling.ts`: how many bytes per second one Iroh stream
 * carries on loopback through the JavaScript binding, in large frames: the ceiling a
 * snapshot transfer can reach (`docs/benchmarks.md`, "Joins with data").
 *
 * Two endpoints in this process (so the figure includes both sides' conversions to and
 * from `number[]`), one stream, `--megabytes` of frames of `--frame-kib` each, the sender
 * keeping at most two frames in flight as the snapshot sender does.
 *
 * Usage: deno run -A scripts/bench_iroh_ceiling.ts [--megabytes 32] [--frame-kib 768] [--runs 3]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { bindLoopbackEndpoint, peerAddressOf } from "../src/transport/testing.ts";
import type { FramedStream } from "../src/transport/framed_stream.ts";

const { values } = parseArgs({
  options: {
    megabytes: { type: "string", default: "32" },
    "frame-kib": { type: "string", default: "768" },
    runs: { type: "string", default: "3" },
  },
});
const totalBytes = Number(values.megabytes) * 1024 * 1024;
const frameBytes = Number(values["frame-kib"]) * 1024;
const runs = Number(values.runs);
const ALPN = "blixard/bench-ceiling/0";

const server = await bindLoopbackEndpoint();
const client = await bindLoopbackEndpoint();
const received = Promise.withResolvers<FramedStream>();
server.handle(ALPN, async (connection) => {
  const stream = await connection.acceptStream();
  if (stream !== null) received.resolve(stream);
}, { frameBytesMax: frameBytes + 1024 });
try {
  const connection = await client.connect(peerAddressOf(server), ALPN, { timeoutMs: 10_000 });
  const sender = await connection.openStream();
  await sender.send(new Uint8Array(1));
  const receiver = await received.promise;
  await receiver.receive();
  const frame = crypto.getRandomValues(new Uint8Array(Math.min(frameBytes, 65536)));
  const payload = new Uint8Array(frameBytes);
  for (let offset = 0; offset < frameBytes; offset += frame.length) payload.set(frame, offset);
  const rates: number[] = [];
  for (let run = 0; run < runs; run++) {
    const frames = Math.ceil(totalBytes / frameBytes);
    const started = performance.now();
    const reading = (async () => {
      let bytes = 0;
      for (let i = 0; i < frames; i++) bytes += (await receiver.receive() as Uint8Array).length;
      return bytes;
    })();
    let inFlight: Promise<void>[] = [];
    for (let i = 0; i < frames; i++) {
      inFlight.push(sender.send(payload));
      if (inFlight.length >= 2) {
        await inFlight.shift();
      }
    }
    await Promise.all(inFlight);
    inFlight = [];
    const bytes = await reading;
    const seconds = (performance.now() - started) / 1000;
    rates.push(bytes / seconds / 1e6);
    console.log(
      `run ${run + 1}: ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s = ${
        (bytes / seconds / 1e6).toFixed(1)
      } MB/s`,
    );
  }
  rates.sort((a, b) => a - b);
  console.log(
    `median ${rates[Math.floor(rates.length / 2)]!.toFixed(1)} MB/s (frames of ${
      frameBytes / 1024
    } KiB, ${runs} runs)`,
  );
} finally {
  await client.close();
  await server.close();
}
