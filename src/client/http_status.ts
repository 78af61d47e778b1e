/**
 * A node's `/status` over plain HTTP, for scripts that watch nodes come and go (the
 * `cluster3` task, the benchmark): `null` while the node does not answer, so a caller can
 * poll without handling errors.
 *
 * @module
 */

import type { StatusJson } from "../transport/cluster_rpcs.ts";

/** `GET http://host:httpPort/status`, or `null` when the node is not serving (yet). */
export async function fetchStatus(
  httpPort: number,
  host = "127.0.0.1",
): Promise<StatusJson | null> {
  try {
    const response = await fetch(`http://${host}:${httpPort}/status`);
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return await response.json() as StatusJson;
  } catch {
    return null;
  }
}
