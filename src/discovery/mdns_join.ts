/**
 * What a starting node does with mDNS candidates: wait until the formation rule decides
 * (`awaitFormation`), and find a seed to join through (`findSeedByMdns`). A seed found by
 * mDNS is connected and checked by `connectSeed`, the same connect-by-key and `ping` as a
 * `/bootstrap` seed; the join then goes on exactly as through `--peers` (authenticate with
 * a secret, join RPC, learner, promotion).
 *
 * @module
 */

import { connectSeed, type Seed } from "../bootstrap/bootstrap_client.ts";
import { BootstrapInfoSchema } from "../bootstrap/bootstrap_info.ts";
import { getLogger } from "../log/logging.ts";
import type { P2pEndpoint } from "../transport/p2p_endpoint.ts";
import { abortReason } from "../util/sleep.ts";
import type { Candidate } from "./candidate_table.ts";
import { isUsable } from "./candidate_table.ts";
import { decideFormation, type FormationDecision, joinableCandidates } from "./formation.ts";
import type { MdnsDiscovery } from "./mdns_discovery.ts";

const log = getLogger(["blixard", "mdns"]);

/** Deadline of one connect-and-ping to a candidate. */
const SEED_ATTEMPT_TIMEOUT_MS = 5_000;
/** A candidate that failed is not tried again for this long. */
const FAILED_CANDIDATE_PAUSE_MS = 1_000;
/** The formation rule is applied again at least this often (`--discovery-wait` elapses). */
const FORMATION_TICK_MS = 50;

/** What the formation rule needs besides the candidates. */
export interface FormationOptions {
  selfNodeId: number;
  bootstrapExpect: number | null;
  clusterIdFilter: string | null;
  discoveryWaitMs: number;
  /** Give up (reject) after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called with each new "wait" reason, for `/status` and the log. */
  onWait?: (reason: string) => void;
}

/** Waits until the formation rule says found or join, and returns that decision. */
export async function awaitFormation(
  discovery: MdnsDiscovery,
  options: FormationOptions,
): Promise<Exclude<FormationDecision, { kind: "wait" }>> {
  const startedMs = performance.now();
  let lastReason = "";
  for (;;) {
    const elapsedMs = performance.now() - startedMs;
    const decision = decideFormation({
      selfNodeId: options.selfNodeId,
      bootstrapExpect: options.bootstrapExpect,
      clusterId: options.clusterIdFilter,
      elapsedMs,
      discoveryWaitMs: options.discoveryWaitMs,
      candidates: discovery.candidates().map(formationCandidate),
    });
    if (decision.kind !== "wait") return decision;
    if (decision.reason !== lastReason) {
      lastReason = decision.reason;
      options.onWait?.(decision.reason);
    }
    if (elapsedMs >= options.timeoutMs) {
      throw new Error(
        `mDNS: no cluster formed within --join-timeout ${options.timeoutMs} ms: ` +
          `${decision.reason}; start the other nodes, or check --mdns-interface`,
      );
    }
    await nextChange(discovery, FORMATION_TICK_MS, options.signal);
  }
}

/** Options of {@linkcode findSeedByMdns}. */
export interface MdnsSeedOptions {
  endpoint: P2pEndpoint;
  selfNodeId: number;
  clusterIdFilter: string | null;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Finds a usable candidate in a cluster (the lowest node id, as the formation rule
 * joins), connects to its key and pings it. Candidates that fail are skipped for a
 * second. Rejects after `timeoutMs` when none answered.
 */
export async function findSeedByMdns(
  discovery: MdnsDiscovery,
  options: MdnsSeedOptions,
): Promise<Seed> {
  const deadlineMs = performance.now() + options.timeoutMs;
  const failedUntil = new Map<string, number>();
  let lastFailure = "no usable candidate in a cluster was seen";
  for (;;) {
    options.signal?.throwIfAborted();
    const nowMs = performance.now();
    if (nowMs >= deadlineMs) {
      throw new Error(`mDNS: no seed within ${options.timeoutMs} ms: ${lastFailure}`);
    }
    const candidate = joinable(discovery, options)
      .find((found) => (failedUntil.get(found.instance) ?? 0) <= nowMs);
    if (candidate === undefined) {
      await nextChange(
        discovery,
        Math.min(FORMATION_TICK_MS * 4, deadlineMs - nowMs),
        options.signal,
      );
      continue;
    }
    const peer = `mdns:${candidate.instance}`;
    try {
      const info = BootstrapInfoSchema.parse({
        node_id: candidate.advert.nodeId,
        p2p_node_id: candidate.advert.p2pNodeId,
        p2p_addresses: candidate.advert.addresses,
        p2p_relay_url: null,
        cluster_id: candidate.advert.clusterId,
      });
      const attemptSignal = AbortSignal.any([
        AbortSignal.timeout(SEED_ATTEMPT_TIMEOUT_MS),
        ...(options.signal === undefined ? [] : [options.signal]),
      ]);
      const seed = await connectSeed(info, peer, {
        endpoint: options.endpoint,
        deadlineMs: Math.min(deadlineMs, nowMs + SEED_ATTEMPT_TIMEOUT_MS),
        signal: attemptSignal,
        advertisedBy: "mDNS",
      });
      log.info("mDNS: seed found: node {nodeId} ({instance}), P2P id {p2pNodeId}", {
        nodeId: info.node_id,
        instance: candidate.instance,
        p2pNodeId: info.p2p_node_id,
      });
      return seed;
    } catch (error) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      lastFailure = `${peer}: ${error instanceof Error ? error.message : String(error)}`;
      log.warn`mDNS: seed ${peer} failed: ${lastFailure}`;
      failedUntil.set(candidate.instance, performance.now() + FAILED_CANDIDATE_PAUSE_MS);
    }
  }
}

/** Usable candidates in a cluster that may be joined, lowest node id first. */
function joinable(discovery: MdnsDiscovery, options: MdnsSeedOptions): Candidate[] {
  const view = { selfNodeId: options.selfNodeId, clusterId: options.clusterIdFilter };
  const candidates = discovery.candidates().map((candidate) => ({
    ...formationCandidate(candidate),
    candidate,
  }));
  return joinableCandidates(candidates, view).map((entry) => entry.candidate);
}

function formationCandidate(candidate: Candidate) {
  return {
    nodeId: candidate.advert.nodeId,
    clusterId: candidate.advert.clusterId,
    usable: isUsable(candidate.verdict),
  };
}

/** Resolves at the next change of the candidates, or after `waitMs`, whichever is first. */
function nextChange(discovery: MdnsDiscovery, waitMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      unsubscribe();
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, Math.max(1, waitMs));
    const unsubscribe = discovery.onChange(() => {
      done();
      resolve();
    });
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
