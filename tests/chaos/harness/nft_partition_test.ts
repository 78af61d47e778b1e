import assert from "node:assert/strict";
import type dgram from "node:dgram";
import { bindUdp, closeUdp } from "../../helpers/ports.ts";
import { cutsBetween, NftPartition } from "./nft_partition.ts";
import { runCommand, unavailableReason } from "./system_command.ts";

const reason = await unavailableReason("nft");
if (reason !== null) console.warn(`nft_partition_test: nftables tests skipped: ${reason}`);

Deno.test("cutsBetween() cuts every pair both ways, or one way only", () => {
  assert.deepEqual(cutsBetween([1], [2, 3]), [
    { from: 1, to: 2 },
    { from: 2, to: 1 },
    { from: 1, to: 3 },
    { from: 3, to: 1 },
  ]);
  assert.deepEqual(cutsBetween([1], [2, 3], "aToB"), [{ from: 1, to: 2 }, { from: 1, to: 3 }]);
});

Deno.test({
  name:
    "NftPartition drops UDP from one loopback port to another until healed, and close() deletes its table",
  ignore: reason !== null,
  fn: async () => {
    const sender = await bindUdp(0);
    const receiver = await bindUdp(0);
    const partition = await NftPartition.open({ suffix: `${Deno.pid}_test` });
    try {
      const received: string[] = [];
      const first = new Promise<void>((resolve) =>
        receiver.on("message", (message) => {
          received.push(message.toString());
          resolve();
        })
      );
      await partition.set(cutsBetween([portOf(sender)], [portOf(receiver)], "aToB"));
      // Loopback delivers within the send call, so a datagram that got through would be
      // queued before the one sent after the heal.
      await send(sender, "while cut", portOf(receiver));
      await partition.heal();
      await send(sender, "after heal", portOf(receiver));
      await first;
      assert.deepEqual(received, ["after heal"]);
    } finally {
      await partition.close();
      await closeUdp(sender);
      await closeUdp(receiver);
    }
    const listed = await runCommand("nft", ["list", "table", "inet", partition.table]);
    assert.notEqual(listed.code, 0, "the table is gone");
  },
});

function portOf(socket: dgram.Socket): number {
  return socket.address().port;
}

function send(socket: dgram.Socket, text: string, port: number): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.send(text, port, "127.0.0.1", (error) => error ? reject(error) : resolve())
  );
}
