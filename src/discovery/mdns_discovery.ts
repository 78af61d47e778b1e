/**
 * `MdnsDiscovery`: mDNS on one node. It advertises the node (`MdnsResponder`), browses
 * for `_blixard._udp.local` (RFC 6762 §5.2: a query at once, then at growing intervals up
 * to a minute; at start also one one-shot query from its own port, §5.1, which members
 * answer by unicast at once), reads every Blixard TXT record it hears as an `Advert`,
 * checks it (the signature when this node has a secret, the cluster when `--cluster-id`
 * is given) and keeps the result in a `CandidateTable`, which `/status` shows and the
 * joiner and the formation rule read.
 *
 * It re-signs its own advert before the signature would go stale, and re-announces when
 * its cluster or addresses change. Records from the network are hostile: each is bounded
 * before it is decoded, checked before it is kept, and counted by reason when refused;
 * signature checks in flight are bounded too.
 *
 * @module
 */

import type { Gauge } from "../http/metric_registry.ts";
import type { ClusterSecret } from "../auth/cluster_secret.ts";
import { defineCounter, defineGauge, type NodeMetrics } from "../http/metrics.ts";
import { getLogger } from "../log/logging.ts";
import { type Advert, decodeAdvert, encodeAdvert } from "./advert.ts";
import { ADVERT_RESIGN_AFTER_MS, checkAdvertSignature, signAdvert } from "./advert_signature.ts";
import {
  type Candidate,
  CandidateTable,
  type CandidateVerdict,
  isUsable,
} from "./candidate_table.ts";
import {
  MdnsResponder,
  RECORD_TTL_S,
  type ResponderTiming,
  SERVICE_TYPE,
} from "./mdns_responder.ts";
import {
  type DnsPacket,
  type DnsRecord,
  guarded,
  type MulticastSocket,
} from "./multicast_socket.ts";

const log = getLogger(["blixard", "mdns"]);

/** Records of one packet looked at; the rest are ignored. */
const RECORDS_PER_PACKET_MAX = 64;
/** Signature checks in flight at most; records beyond are dropped (`overloaded`). */
const VERIFICATIONS_IN_FLIGHT_MAX = 32;
/** Browse queries: first pause, and the longest (RFC 6762 §5.2). */
const BROWSE_INTERVAL_MIN_MS = 1_000;
const BROWSE_INTERVAL_MAX_MS = 60_000;
/** How long the one-shot socket waits for unicast answers to its query before it closes. */
const ONE_SHOT_LISTEN_MS = 2_000;
/** How often the node checks whether its advert changed, and expires candidates. */
const REFRESH_INTERVAL_MS = 100;
/** Known answers (RFC 6762 §7.1) a browse query carries at most: it stays one small packet. */
const KNOWN_ANSWERS_MAX = 16;
/**
 * Life of a candidate read from another node's probe: its proposed records are tentative
 * (it may lose the name), so they count only until its announcement would have come.
 */
const PROBED_CANDIDATE_TTL_MS = 3_000;

/** Why a record from the network was refused: the label of the rejection counter. */
export type RecordRejection =
  | "oversized"
  | "malformed"
  | "unsigned"
  | "bad_signature"
  | "stale"
  | "other_cluster"
  | "table_full"
  | "overloaded";

/** What the node advertises that can change while it runs. */
export interface AdvertSource {
  clusterId(): string | null;
  addresses(): string[];
}

/** Options of {@linkcode MdnsDiscovery.start}. */
export interface MdnsDiscoveryOptions {
  socket: MulticastSocket;
  /**
   * A socket on an ephemeral port (`openOneShotSocket`) for one query at start, answered
   * by unicast at once (RFC 6762 §5.1, §6.7); closed after `ONE_SHOT_LISTEN_MS`. Absent:
   * the node waits for the answers to its multicast query.
   */
  oneShotSocket?: MulticastSocket;
  nodeId: number;
  p2pNodeId: string;
  p2pPort: number;
  httpPort: number;
  /** The A record's address, or `null`. */
  hostAddress: string | null;
  source: AdvertSource;
  clusterSecret: ClusterSecret | null;
  /** `--cluster-id`: candidates of other clusters are refused. */
  clusterIdFilter: string | null;
  metrics: NodeMetrics;
  /** Wall clock in Unix ms (signatures carry wall time); `Date.now` by default. */
  now?: () => number;
  /** The responder's RFC 6762 delays; tests shorten them. */
  responderTiming?: ResponderTiming;
}

/** One candidate as `/status` shows it. */
export interface CandidateJson {
  instance: string;
  node_id: number;
  cluster_id: string | null;
  /** Absent on a node with a cluster secret (as the members' keys are in its `/status`). */
  p2p_node_id?: string;
  p2p_addresses?: string[];
  http_port?: number;
  age_ms: number;
  /** `verified`/`accepted`, or why it is not usable. */
  verdict: CandidateVerdict;
}

/** mDNS advertising and browsing for one node. */
export class MdnsDiscovery {
  readonly #options: MdnsDiscoveryOptions;
  readonly #now: () => number;
  readonly #table = new CandidateTable();
  readonly #responder: MdnsResponder;
  readonly #stopping = new AbortController();
  readonly #listeners = new Set<() => void>();
  readonly #counters;
  #advert: Advert;
  #verificationsInFlight = 0;
  #refreshTimer: ReturnType<typeof setInterval> | undefined;
  #browseTimer: ReturnType<typeof setTimeout> | undefined;
  #oneShotTimer: ReturnType<typeof setTimeout> | undefined;
  #oneShotClosed: Promise<void> | null = null;
  #refreshing = false;

  private constructor(options: MdnsDiscoveryOptions, advert: Advert) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#advert = advert;
    this.#counters = registerMetrics(options.metrics, () => this.candidates().length);
    this.#responder = new MdnsResponder(options.socket, {
      records: {
        nodeId: options.nodeId,
        p2pNodeId: options.p2pNodeId,
        p2pPort: options.p2pPort,
        hostAddress: options.hostAddress,
      },
      txt: encodeAdvert(advert),
      events: {
        onAnnounced: () => this.#counters.announcements.inc(),
        onQueryAnswered: () => this.#counters.queriesAnswered.inc(),
      },
      ...(options.responderTiming === undefined ? {} : { timing: options.responderTiming }),
    });
    options.socket.on(
      "response",
      guarded((packet) => this.#onResponse(packet), () => {
        this.#counters.rejected.inc({ reason: "malformed" });
      }),
    );
    // A node that probes proposes its records, TXT included (RFC 6762 §8.2), about a
    // second before it may announce them: read as a short-lived hint, they let the
    // formation rule and a joiner act on it that much sooner.
    options.socket.on(
      "query",
      guarded((packet) => this.#onProbe(packet), () => {
        this.#counters.rejected.inc({ reason: "malformed" });
      }),
    );
    options.socket.on("warning", (error) => {
      this.#counters.rejected.inc({ reason: "malformed" });
      log.debug("mDNS: {error}", { error: error.message });
    });
  }

  /** Starts browsing at once and advertising (after probing, in the background). */
  static async start(options: MdnsDiscoveryOptions): Promise<MdnsDiscovery> {
    const discovery = new MdnsDiscovery(
      options,
      await currentAdvert(options, (options.now ?? Date.now)()),
    );
    discovery.#queryOnce();
    discovery.#browse(0);
    discovery.#refreshTimer = setInterval(() => discovery.#refresh(), REFRESH_INTERVAL_MS);
    discovery.#responder.start().catch((error) => {
      log.error("mDNS: advertising failed: {error}", { error: String(error) });
    });
    return discovery;
  }

  /** The DNS-SD instance name this node advertises. */
  get instanceName(): string {
    return this.#responder.instanceName;
  }

  /** The candidates alive now. */
  candidates(): Candidate[] {
    return this.#table.list(this.#now());
  }

  /**
   * The candidates as `/status` shows them; without `withKeys` (a node with a secret shows
   * strangers no keys or addresses), without their P2P ids, addresses and HTTP ports.
   */
  statusJson(
    options: { withKeys: boolean } = { withKeys: true },
  ): { instance: string; candidates: CandidateJson[] } {
    const nowMs = this.#now();
    return {
      instance: this.instanceName,
      candidates: this.candidates().map((candidate) => ({
        instance: candidate.instance,
        node_id: candidate.advert.nodeId,
        cluster_id: candidate.advert.clusterId,
        ...(options.withKeys
          ? {
            p2p_node_id: candidate.advert.p2pNodeId,
            p2p_addresses: [...candidate.advert.addresses],
            http_port: candidate.advert.httpPort,
          }
          : {}),
        age_ms: Math.max(0, nowMs - candidate.seenAtMs),
        verdict: candidate.verdict,
      })),
    };
  }

  /**
   * Re-reads the advert's source now rather than at the next poll: the node calls it once
   * it has its cluster, which joiners wait to see.
   */
  refreshNow(): void {
    void this.#refresh();
  }

  /**
   * Advertises the node's cluster id as soon as it is applied (a founder's first commit, a
   * joiner's first entries): after each of `raft`'s Ready passes until the node has one,
   * rather than at the next poll of the advert, up to 100 ms later. The joiners of a
   * `--bootstrap-expect` formation wait for the founder's.
   */
  advertiseClusterIdOnceApplied(raft: { on(events: { afterReady?: () => void }): void }): void {
    let advertised = false;
    raft.on({
      afterReady: () => {
        if (advertised || this.#options.source.clusterId() === null) return;
        advertised = true;
        this.refreshNow();
      },
    });
  }

  /** Calls `listener` after each change of the candidates; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Says goodbye (TTL 0) and closes the socket. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopping.signal.aborted) return;
    this.#stopping.abort(new Error("mDNS discovery stopped"));
    clearInterval(this.#refreshTimer);
    clearTimeout(this.#browseTimer);
    this.#listeners.clear();
    await this.#closeOneShot();
    await this.#responder.stop();
    await new Promise<void>((resolve) => this.#options.socket.destroy(() => resolve()));
  }

  /**
   * The one-shot query (RFC 6762 §5.1) from its own port: every announced responder answers
   * it by unicast at once (§6.7), where the answer to the multicast query waits 20-120 ms
   * (§6, a shared PTR), or up to a second when the responder multicast its records a moment
   * before (for an announcement, or another node's query). A joiner acts on the first.
   */
  #queryOnce(): void {
    const socket = this.#options.oneShotSocket;
    if (socket === undefined) return;
    socket.on(
      "response",
      guarded((packet) => this.#onResponse(packet), () => {
        this.#counters.rejected.inc({ reason: "malformed" });
      }),
    );
    socket.on("warning", () => this.#counters.rejected.inc({ reason: "malformed" }));
    socket.on("error", (error) => log.debug("mDNS one-shot query: {error}", { error }));
    socket.query({
      questions: [{ name: SERVICE_TYPE, type: "PTR" }],
      answers: this.#knownAnswers(),
    });
    this.#oneShotTimer = setTimeout(() => void this.#closeOneShot(), ONE_SHOT_LISTEN_MS);
  }

  #closeOneShot(): Promise<void> {
    const socket = this.#options.oneShotSocket;
    if (socket === undefined) return Promise.resolve();
    clearTimeout(this.#oneShotTimer);
    this.#oneShotClosed ??= new Promise((resolve) => socket.destroy(() => resolve()));
    return this.#oneShotClosed;
  }

  #browse(intervalMs: number): void {
    if (this.#stopping.signal.aborted) return;
    this.#options.socket.query({
      questions: [{ name: SERVICE_TYPE, type: "PTR" }],
      answers: this.#knownAnswers(),
    });
    const nextMs = Math.min(
      BROWSE_INTERVAL_MAX_MS,
      Math.max(BROWSE_INTERVAL_MIN_MS, intervalMs * 2),
    );
    this.#browseTimer = setTimeout(() => this.#browse(nextMs), nextMs);
  }

  /** Expires candidates; re-signs and re-announces when the advert changed or ages. */
  async #refresh(): Promise<void> {
    if (this.#refreshing || this.#stopping.signal.aborted) return;
    this.#refreshing = true;
    try {
      if (this.#table.expire(this.#now()) > 0) this.#changed();
      const nowMs = this.#now();
      const source = this.#options.source;
      const changed = source.clusterId() !== this.#advert.clusterId ||
        source.addresses().join(",") !== this.#advert.addresses.join(",");
      const aged = this.#advert.issuedAtMs !== null &&
        nowMs - this.#advert.issuedAtMs >= ADVERT_RESIGN_AFTER_MS;
      if (!changed && !aged) return;
      this.#advert = await currentAdvert(this.#options, nowMs);
      // A new signature alone needs no announcement: the next answer carries it.
      if (changed) await this.#responder.updateTxt(encodeAdvert(this.#advert));
      else await this.#responder.updateTxtQuietly(encodeAdvert(this.#advert));
    } catch (error) {
      log.warn("mDNS: refreshing the advert failed: {error}", { error: String(error) });
    } finally {
      this.#refreshing = false;
    }
  }

  /**
   * RFC 6762 §7.1: the instances this node already knows, with more than half their TTL
   * left, so that their responders need not answer again; its own among them.
   */
  #knownAnswers(): DnsRecord[] {
    const nowMs = this.#now();
    // This node's own instance first. Its responder hears this query too (multicast
    // loopback), and an answer to it would be a multicast for nobody that starts the one
    // second in which RFC 6762 §6 forbids multicasting the records again: a joiner whose
    // first query came within that second waited for it to end (800 ms of the mDNS join).
    const own: DnsRecord = {
      name: SERVICE_TYPE,
      type: "PTR",
      ttl: RECORD_TTL_S,
      data: this.#responder.instanceName,
    };
    const others = this.candidates()
      .filter((candidate) =>
        candidate.expiresAtMs - nowMs > (candidate.expiresAtMs - candidate.seenAtMs) / 2
      )
      .slice(0, KNOWN_ANSWERS_MAX - 1)
      .map((candidate) => ({
        name: SERVICE_TYPE,
        type: "PTR",
        ttl: Math.floor((candidate.expiresAtMs - nowMs) / 1000),
        data: candidate.instance,
      }));
    return [own, ...others];
  }

  #onProbe(packet: DnsPacket): void {
    const proposed = (packet.authorities ?? []).slice(0, RECORDS_PER_PACKET_MAX);
    for (const record of proposed) {
      const name = typeof record.name === "string" ? record.name.toLowerCase() : "";
      if (record.type !== "TXT" || !name.endsWith(`.${SERVICE_TYPE}`)) continue;
      if (name === this.instanceName) continue;
      const strings = Array.isArray(record.data) ? record.data as Uint8Array[] : [];
      this.#consider(name, strings, PROBED_CANDIDATE_TTL_MS);
    }
  }

  #onResponse(packet: DnsPacket): void {
    const records = [...packet.answers, ...packet.additionals].slice(0, RECORDS_PER_PACKET_MAX);
    for (const record of records) {
      const name = typeof record.name === "string" ? record.name.toLowerCase() : "";
      if (record.type === "PTR" && name === SERVICE_TYPE && record.ttl === 0) {
        this.#forget(String(record.data).toLowerCase());
        continue;
      }
      if (record.type !== "TXT" || !name.endsWith(`.${SERVICE_TYPE}`)) continue;
      if (name === this.instanceName) continue;
      if (record.ttl === 0) {
        this.#forget(name);
        continue;
      }
      const strings = Array.isArray(record.data) ? record.data as Uint8Array[] : [];
      this.#consider(name, strings, (record.ttl ?? 0) * 1000);
    }
  }

  #forget(instance: string): void {
    if (this.#table.remove(instance)) {
      log.info("mDNS: {instance} said goodbye", { instance });
      this.#changed();
    }
  }

  #consider(instance: string, strings: Uint8Array[], ttlMs: number): void {
    const decoded = decodeAdvert(strings);
    if ("rejected" in decoded) {
      this.#reject(decoded.rejected, instance, decoded.detail);
      return;
    }
    if (decoded.advert.p2pNodeId === this.#options.p2pNodeId) return;
    if (this.#verificationsInFlight >= VERIFICATIONS_IN_FLIGHT_MAX) {
      this.#reject("overloaded", instance, "too many records at once");
      return;
    }
    this.#verificationsInFlight++;
    this.#verdictOf(decoded.advert)
      .then((verdict) => {
        if (this.#stopping.signal.aborted) return;
        if (!isUsable(verdict)) this.#reject(verdict as RecordRejection, instance, "");
        const outcome = this.#table.upsert(instance, {
          advert: decoded.advert,
          verdict,
          ttlMs,
          nowMs: this.#now(),
        });
        if (outcome === "table_full") this.#reject("table_full", instance, "");
        else if (outcome !== "kept_usable") this.#changed();
      })
      .finally(() => this.#verificationsInFlight--);
  }

  async #verdictOf(advert: Advert): Promise<CandidateVerdict> {
    const { clusterSecret, clusterIdFilter } = this.#options;
    if (clusterSecret !== null) {
      const refused = await checkAdvertSignature(advert, {
        secret: clusterSecret,
        nowMs: this.#now(),
      });
      if (refused !== null) return refused;
    }
    if (clusterIdFilter !== null && advert.clusterId !== null) {
      if (advert.clusterId !== clusterIdFilter) return "other_cluster";
    }
    return clusterSecret === null ? "accepted" : "verified";
  }

  #reject(reason: RecordRejection, instance: string, detail: string): void {
    this.#counters.rejected.inc({ reason });
    // A tagged template: the instance name and detail come from the network.
    log.debug`mDNS: record of ${instance.slice(0, 100)} refused: ${reason} ${detail}`;
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** The node's advert as it is now, signed when it has a secret. */
async function currentAdvert(options: MdnsDiscoveryOptions, nowMs: number): Promise<Advert> {
  const advert: Advert = {
    nodeId: options.nodeId,
    clusterId: options.source.clusterId(),
    p2pNodeId: options.p2pNodeId,
    addresses: options.source.addresses(),
    httpPort: options.httpPort,
    issuedAtMs: null,
    signature: null,
  };
  return options.clusterSecret === null
    ? advert
    : await signAdvert(advert, { secret: options.clusterSecret, nowMs });
}

function registerMetrics(metrics: NodeMetrics, candidateCount: () => number) {
  const registry = metrics.registry;
  const candidates: Gauge = defineGauge(registry, {
    name: "mdns_candidates",
    help: "Nodes that mDNS sees now, usable or not.",
    labelNames: [],
    collect: () => {
      candidates.set(candidateCount());
    },
  });
  return {
    announcements: defineCounter(registry, {
      name: "mdns_announcements_total",
      help: "Unsolicited mDNS announcements of this node sent.",
      labelNames: [],
    }),
    queriesAnswered: defineCounter(registry, {
      name: "mdns_queries_answered_total",
      help: "mDNS queries this node answered.",
      labelNames: [],
    }),
    rejected: defineCounter<"reason">(registry, {
      name: "mdns_records_rejected_total",
      help: "Blixard mDNS records refused, by reason.",
      labelNames: ["reason"],
    }),
    candidates,
  };
}
