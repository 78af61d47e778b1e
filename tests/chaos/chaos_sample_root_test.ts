/**
 * The sample of `deno task chaos` that needs root: one cycle of three nftables partitions
 * (isolated leader, one direction only, flapping), of a full disk on a tmpfs, and of a
 * stranger's join flood (so the cluster has a cluster secret), on one 3-node cluster,
 * every history checked for
 * linearizability and every acknowledged write read back. Skipped, with a line saying
 * why, without root, nftables or mount.
 */

import { assertFaultSampleHolds } from "./harness/sample.ts";
import { unavailableReason } from "./harness/system_command.ts";

const reason = await unavailableReason("nft") ?? await unavailableReason("mount");
if (reason !== null) console.warn(`chaos_sample_root_test: skipped: ${reason}`);

Deno.test({
  name:
    "one cycle each of an isolated leader, a full disk the node goes on from without a restart, a leader that hears nothing, a flapping network (nftables, tmpfs), and a stranger's join flood, on real nodes: every history linearizable, no acknowledged write lost, the writer got through the flood",
  ignore: reason !== null,
  fn: async () => {
    await assertFaultSampleHolds([
      "isolate-leader",
      "disk-full-follower",
      "one-way-to-leader",
      "flapping",
      "flood-join",
    ]);
  },
});
