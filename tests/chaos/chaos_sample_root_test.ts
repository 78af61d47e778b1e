/**
 * The sample of `deno task chaos` that needs root: one cycle of three nftables partitions
 * (isolated leader, one direction only, flapping) and of a full disk on a tmpfs, on one 3-node cluster, every history checked for
 * linearizability and every acknowledged write read back. Skipped, with a line saying
 * why, without root, nftables or mount.
 */

import { assertFaultSampleHolds } from "./harness/sample.ts";
import { unavailableReason } from "./harness/system_command.ts";

const reason = await unavailableReason("nft") ?? await unavailableReason("mount");
if (reason !== null) console.warn(`chaos_sample_root_test: skipped: ${reason}`);

Deno.test({
  name:
    "one cycle each of an isolated leader, a full disk, a leader that hears nothing, and a flapping network (nftables, tmpfs) on real nodes: every history linearizable, no acknowledged write lost",
  ignore: reason !== null,
  fn: async () => {
    await assertFaultSampleHolds([
      "isolate-leader",
      "disk-full-follower",
      "one-way-to-leader",
      "flapping",
    ]);
  },
});
