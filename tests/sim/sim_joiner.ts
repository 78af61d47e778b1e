/**
 * The simulated machines' joiner: the production join (`joinThrough`: attempts, `busy`
 * asked again on the same seed, retries of everything but the final refusals, backoff,
 * the join timeout) over the production seed search (`searchPeers`: rounds over every
 * `--peers` entry at once, the first verified seed wins, paced pauses between rounds), on
 * the simulated clock. Only the reach is the simulator's (`simSeedReach`): `/bootstrap` and
 * `ping` are calls over `SimRpc`, so a seed that is down or cut off fails as a real one does.
 *
 * @module
 */

import type { RpcCall } from "../../src/auth/authenticate.ts";
import type { Seed, SeedReach } from "../../src/bootstrap/bootstrap_client.ts";
import { BootstrapError } from "../../src/bootstrap/bootstrap_error.ts";
import type { BootstrapInfo } from "../../src/bootstrap/bootstrap_info.ts";
import { JOIN_RPC } from "../../src/transport/cluster_rpcs.ts";
import { PING_RPC } from "../../src/transport/ping_rpc.ts";
import type { PeerAddress } from "../../src/transport/p2p_endpoint.ts";
import { type RpcClient, RpcError } from "../../src/transport/rpc.ts";
import type { Scheduler } from "../../src/util/scheduler.ts";
import type { SeedLink } from "../../src/node/join/joiner.ts";
import { SIM_BOOTSTRAP_RPC } from "./sim_rpc.ts";

/** A seed's connection in the simulator: calls over `SimRpc` to the key it reached. */
export interface SimSeedConnection {
  call: RpcCall;
  path(): "direct";
  /** Nothing to close: `SimRpc` has no connections. */
  close(reason: string): void;
}

/**
 * The joiner's reach on the simulated network for the machine that calls through `rpc`:
 * `peerAddress` maps a `--peers` entry to the node whose `/bootstrap` it names; `onJoinCall`
 * counts the `cluster.join` requests the joiner sends.
 */
export function simSeedReach(
  rpc: Pick<RpcClient, "call">,
  options: {
    scheduler: Scheduler;
    peerAddress: (peer: string) => PeerAddress;
    onJoinCall(): void;
  },
): SeedReach<SimSeedConnection> {
  const { scheduler } = options;
  return {
    scheduler,
    async fetchInfo(source, fetchOptions): Promise<BootstrapInfo> {
      const address = options.peerAddress(source.peer);
      try {
        const { timeoutMs, signal } = fetchOptions;
        return await rpc.call(address, SIM_BOOTSTRAP_RPC, {}, {
          timeoutMs,
          ...(signal === undefined ? {} : { signal }),
        });
      } catch (error) {
        if (!(error instanceof RpcError)) throw error;
        const reason = error.code === "deadline_exceeded" ? "timeout" : "unreachable";
        throw new BootstrapError(source.peer, reason, `/bootstrap: ${error.message}`);
      }
    },
    async connect(info, peer, connectOptions): Promise<Seed<SimSeedConnection>> {
      const address = {
        p2pNodeId: info.p2p_node_id,
        addresses: info.p2p_addresses,
        relayUrl: info.p2p_relay_url,
      };
      const timeoutMs = Math.max(1, Math.floor(connectOptions.deadlineMs - scheduler.now()));
      // The simulated nodes never lie about who they are: `ping` checks that one answers.
      await rpc.call(address, PING_RPC, {}, { timeoutMs, signal: connectOptions.signal });
      const call: RpcCall = (definition, request, callOptions) => {
        if (definition.method === JOIN_RPC.method) options.onJoinCall();
        return rpc.call(address, definition, request, callOptions);
      };
      return { peer, info, connection: { call, path: () => "direct", close: () => {} } };
    },
  };
}

/** The join's view of a seed found on the simulated network. */
export function simSeedLink(seed: Seed<SimSeedConnection>): SeedLink {
  return {
    peer: seed.peer,
    nodeId: seed.info.node_id,
    p2pNodeId: seed.info.p2p_node_id,
    path: () => seed.connection.path(),
    call: seed.connection.call,
    close: (reason) => seed.connection.close(reason),
  };
}
