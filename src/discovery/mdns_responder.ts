/**
 * `MdnsResponder`: a node's DNS-SD service `_blixard._udp.local` on multicast DNS
 * (RFC 6762, RFC 6763), the records that standard tools (`avahi-browse`, `dig`) read:
 *
 * - `_blixard._udp.local PTR <instance>._blixard._udp.local` (and the enumeration PTR of
 *   `_services._dns-sd._udp.local`);
 * - `<instance>._blixard._udp.local SRV 0 0 <P2P port> <host>.local`;
 * - `<instance>._blixard._udp.local TXT v=1 cluster=… node=… p2p=… addrs=… http=… [t= sig=]`;
 * - `<host>.local A <address>`.
 *
 * Its life follows RFC 6762: it probes for its names first (§8.1: three queries 250 ms
 * apart; a response that claims one of them is a conflict, and the instance takes the next
 * name, `-2`, `-3`, …, §9), then announces twice one second apart (§8.3), and again when
 * its TXT changes (§8.4); it answers queries by multicast, at most once a second (§6: an
 * answer due sooner waits for the second to end), and by unicast to legacy resolvers that
 * do not query from port 5353 (§6.7, what `dig -p 5353` does); and it
 * sends its records with TTL 0 when it stops (§10.1, goodbye). Answers are rate-limited,
 * so a flood of queries cannot turn the node into an amplifier.
 *
 * Not done: the simultaneous-probe tie-break (§8.2; instance names carry the node id and
 * the start of the P2P id, so two probers of one name are one data dir copied), conflict
 * detection after announcing, known-answer suppression.
 *
 * @module
 */

import { TokenBucket } from "../util/token_bucket.ts";
import { getLogger } from "../log/logging.ts";
import { sleep } from "../util/sleep.ts";
import {
  type DnsPacket,
  type DnsRecord,
  guarded,
  MDNS_PORT,
  type MulticastSocket,
  type RemoteInfo,
  sendResponse,
} from "./multicast_socket.ts";

const log = getLogger(["blixard", "mdns"]);

/** The DNS-SD service type of Blixard nodes. */
export const SERVICE_TYPE = "_blixard._udp.local";
/** Where DNS-SD lists the service types on the link (RFC 6763 §9). */
const SERVICE_ENUMERATION = "_services._dns-sd._udp.local";
/** TTL of every record: RFC 6762 §10's host-record TTL, so a crashed node fades in 2 min. */
export const RECORD_TTL_S = 120;
/** TTL of answers to legacy unicast queries (RFC 6762 §6.7: at most 10 s). */
const LEGACY_TTL_S = 10;
/** RFC 6762 §8.1: probes, their spacing and the random delay before the first. */
const PROBES = 3;
const PROBE_INTERVAL_MS = 250;
const PROBE_DELAY_MAX_MS = 250;
/** Names tried before giving up on advertising (RFC 6762 §9 renames on each conflict). */
const NAME_ATTEMPTS_MAX = 8;
/** RFC 6762 §8.3: announcements, one second apart. */
const ANNOUNCEMENTS = 2;
const ANNOUNCE_INTERVAL_MS = 1_000;
/** RFC 6762 §6: the same records are multicast at most once a second. */
const MULTICAST_INTERVAL_MS = 1_000;
/** Questions of one query looked at; the rest are ignored. */
const QUESTIONS_MAX = 16;
/** Answers sent per second at most, in bursts of up to `ANSWER_BURST`. */
const ANSWERS_PER_SECOND = 20;
const ANSWER_BURST = 40;

/** What the responder advertises. */
export interface ResponderRecords {
  nodeId: number;
  /** The start of the P2P id, which makes the instance name unique per key. */
  p2pNodeId: string;
  /** The SRV port: the node's P2P (UDP) port. */
  p2pPort: number;
  /** The A record's address, or `null` for none. */
  hostAddress: string | null;
}

/** What the responder reports to the metrics. */
export interface ResponderEvents {
  onAnnounced?: () => void;
  onQueryAnswered?: () => void;
}

/** The node's DNS-SD service. */
export class MdnsResponder {
  readonly #socket: MulticastSocket;
  readonly #records: ResponderRecords;
  readonly #events: ResponderEvents;
  readonly #answers = new TokenBucket({
    capacity: ANSWER_BURST,
    refillPerSecond: ANSWERS_PER_SECOND,
  });
  readonly #stopping = new AbortController();
  #txt: string[];
  #instanceLabel: string;
  #state: "probing" | "announced" | "gave_up" | "stopped" = "probing";
  #lastMulticastMs = Number.NEGATIVE_INFINITY;
  #deferredAnswer: ReturnType<typeof setTimeout> | undefined;
  #conflict = false;

  /** A responder for `records`, with TXT `txt`; `start()` probes and announces. */
  constructor(
    socket: MulticastSocket,
    options: { records: ResponderRecords; txt: string[]; events?: ResponderEvents },
  ) {
    this.#socket = socket;
    this.#records = options.records;
    this.#events = options.events ?? {};
    this.#txt = options.txt;
    this.#instanceLabel = baseLabel(options.records);
    const ignore = (error: unknown) => log.debug("mDNS: packet ignored: {error}", { error });
    socket.on("query", guarded((packet, from) => this.#answer(packet, from), ignore));
    socket.on("response", guarded((packet) => this.#noticeConflict(packet), ignore));
  }

  /** `<instance>._blixard._udp.local`, lower case. */
  get instanceName(): string {
    return `${this.#instanceLabel}.${SERVICE_TYPE}`.toLowerCase();
  }

  /** `<host>.local`: the instance label, a valid host name. */
  get hostName(): string {
    return `${this.#instanceLabel}.local`.toLowerCase();
  }

  /** Probes for a free name, then announces. Resolves once announced (or given up). */
  async start(): Promise<void> {
    const signal = this.#stopping.signal;
    try {
      for (let attempt = 1; attempt <= NAME_ATTEMPTS_MAX; attempt++) {
        if (await this.#probe(signal)) {
          this.#state = "announced";
          log.info("mDNS: advertising {instance}", { instance: this.instanceName });
          await this.#announce(signal);
          return;
        }
        const taken = this.instanceName;
        this.#instanceLabel = `${baseLabel(this.#records)}-${attempt + 1}`;
        log.warn("mDNS: {taken} is taken on the network; trying {next}", {
          taken,
          next: this.instanceName,
        });
      }
      this.#state = "gave_up";
      log.error("mDNS: every name tried is taken; this node is not advertised");
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  /** Replaces the TXT record and announces it (RFC 6762 §8.4). */
  async updateTxt(txt: string[]): Promise<void> {
    this.#txt = txt;
    if (this.#state !== "announced") return;
    try {
      await this.#announce(this.#stopping.signal);
    } catch (error) {
      if (!this.#stopping.signal.aborted) throw error;
    }
  }

  /** Replaces the TXT record without announcing it: the next answer carries it. */
  updateTxtQuietly(txt: string[]): void {
    this.#txt = txt;
  }

  /** Sends the goodbye (every record with TTL 0) if it was announced; answers nothing after. */
  async stop(): Promise<void> {
    const announced = this.#state === "announced";
    this.#state = "stopped";
    this.#stopping.abort(new Error("the mDNS responder stopped"));
    clearTimeout(this.#deferredAnswer);
    if (!announced) return;
    const goodbye = this.#allRecords(RECORD_TTL_S).map((record) => ({ ...record, ttl: 0 }));
    const error = await sendResponse(this.#socket, { answers: goodbye });
    if (error !== null) log.warn("mDNS: goodbye not sent: {error}", { error: error.message });
  }

  async #probe(signal: AbortSignal): Promise<boolean> {
    this.#conflict = false;
    await sleep(Math.random() * PROBE_DELAY_MAX_MS, signal);
    const [srv, txt] = this.#instanceRecords(RECORD_TTL_S);
    for (let probe = 0; probe < PROBES; probe++) {
      this.#socket.query({
        questions: [
          { name: this.instanceName, type: "ANY" },
          { name: this.hostName, type: "ANY" },
        ],
        authorities: [srv!, txt!, ...this.#addressRecords(RECORD_TTL_S)],
      });
      await sleep(PROBE_INTERVAL_MS, signal);
      if (this.#conflict) return false;
    }
    return !this.#conflict;
  }

  async #announce(signal: AbortSignal): Promise<void> {
    for (let announcement = 0; announcement < ANNOUNCEMENTS; announcement++) {
      if (announcement > 0) await sleep(ANNOUNCE_INTERVAL_MS, signal);
      this.#lastMulticastMs = performance.now();
      const error = await sendResponse(this.#socket, { answers: this.#allRecords(RECORD_TTL_S) });
      if (error !== null) {
        log.warn("mDNS: announcement not sent: {error}", { error: error.message });
      } else this.#events.onAnnounced?.();
    }
  }

  /** A response that claims our names with other data, while probing, is a conflict. */
  #noticeConflict(packet: DnsPacket): void {
    if (this.#state !== "probing") return;
    const ours = new Set([this.instanceName, this.hostName]);
    const mine = new Set(this.#allRecords(RECORD_TTL_S).map(recordKey));
    const claims = [...packet.answers, ...packet.additionals].slice(0, QUESTIONS_MAX * 4);
    if (claims.some((record) => ours.has(nameOf(record)) && !mine.has(recordKey(record)))) {
      this.#conflict = true;
    }
  }

  #answer(packet: DnsPacket, from: RemoteInfo): void {
    if (this.#state !== "announced") return;
    const legacy = from.port !== MDNS_PORT;
    const ttl = legacy ? LEGACY_TTL_S : RECORD_TTL_S;
    const answers: DnsRecord[] = [];
    let answered: { name: string; type: string } | null = null;
    for (const question of packet.questions.slice(0, QUESTIONS_MAX)) {
      const name = typeof question.name === "string" ? question.name.toLowerCase() : "";
      const found = this.#answersTo(name, question.type, ttl);
      // Echoed to a legacy resolver: our own name and a type we answer, never its bytes.
      if (found.length > 0) answered ??= { name, type: found.length > 1 ? "ANY" : found[0]!.type };
      answers.push(...found);
    }
    if (answers.length === 0) return;
    const additionals = this.#allRecords(ttl).filter((record) =>
      !answers.some((answer) => recordKey(answer) === recordKey(record))
    );
    if (legacy) {
      // A legacy resolver matches the answer to its question by id and question section, and
      // reads the cache-flush bit as part of the class (RFC 6762 §6.7: not set for it).
      const unflushed = (records: DnsRecord[]) =>
        records.map((record) => ({ ...record, flush: false }));
      this.#send({
        id: packet.id ?? 0,
        questions: answered === null ? [] : [answered],
        answers: unflushed(answers),
        additionals: unflushed(additionals),
      }, { address: from.address, port: from.port });
      return;
    }
    // RFC 6762 §6: multicast at most once a second. Within that second the answer waits for
    // it to end (one pending answer, with every record, serves all the queries meanwhile):
    // a unicast to port 5353 could reach another node's socket on the same host instead.
    const sinceMs = performance.now() - this.#lastMulticastMs;
    if (sinceMs >= MULTICAST_INTERVAL_MS) {
      this.#lastMulticastMs = performance.now();
      this.#send({ answers, additionals }, null);
    } else if (this.#deferredAnswer === undefined) {
      this.#deferredAnswer = setTimeout(() => {
        this.#deferredAnswer = undefined;
        if (this.#state !== "announced") return;
        this.#lastMulticastMs = performance.now();
        this.#send({ answers: this.#allRecords(RECORD_TTL_S) }, null);
      }, MULTICAST_INTERVAL_MS - sinceMs);
    }
  }

  /** Sends an answer, within the rate limit. */
  #send(response: Partial<DnsPacket>, to: RemoteInfo | null): void {
    if (!this.#answers.tryTake().allowed) return;
    sendResponse(this.#socket, response, to).then((error) => {
      if (error === null) this.#events.onQueryAnswered?.();
    });
  }

  #answersTo(name: string, type: string, ttl: number): DnsRecord[] {
    const any = type === "ANY";
    const [srv, txt] = this.#instanceRecords(ttl);
    if (name === SERVICE_TYPE && (any || type === "PTR")) return [this.#pointer(ttl)];
    if (name === SERVICE_ENUMERATION && (any || type === "PTR")) return [this.#enumeration(ttl)];
    if (name === this.instanceName) {
      return [srv!, txt!].filter((record) => any || record.type === type);
    }
    if (name === this.hostName && (any || type === "A")) return this.#addressRecords(ttl);
    return [];
  }

  #allRecords(ttl: number): DnsRecord[] {
    return [
      this.#pointer(ttl),
      ...this.#instanceRecords(ttl),
      ...this.#addressRecords(ttl),
      this.#enumeration(ttl),
    ];
  }

  #pointer(ttl: number): DnsRecord {
    return { name: SERVICE_TYPE, type: "PTR", ttl, data: this.instanceName };
  }

  #enumeration(ttl: number): DnsRecord {
    return { name: SERVICE_ENUMERATION, type: "PTR", ttl, data: SERVICE_TYPE };
  }

  #instanceRecords(ttl: number): DnsRecord[] {
    return [
      {
        name: this.instanceName,
        type: "SRV",
        ttl,
        flush: true,
        data: { priority: 0, weight: 0, port: this.#records.p2pPort, target: this.hostName },
      },
      { name: this.instanceName, type: "TXT", ttl, flush: true, data: [...this.#txt] },
    ];
  }

  #addressRecords(ttl: number): DnsRecord[] {
    const address = this.#records.hostAddress;
    return address === null
      ? []
      : [{ name: this.hostName, type: "A", ttl, flush: true, data: address }];
  }
}

/** `blixard-<id>-<first 8 hex of the P2P id>`: one DNS label, unique per key. */
function baseLabel(records: ResponderRecords): string {
  return `blixard-${records.nodeId}-${records.p2pNodeId.slice(0, 8)}`;
}

function nameOf(record: DnsRecord): string {
  return typeof record.name === "string" ? record.name.toLowerCase() : "";
}

/** Name, type and data: what makes two records the same (TTL and flush aside). */
function recordKey(record: DnsRecord): string {
  const data = Array.isArray(record.data)
    ? record.data.map((part: Uint8Array | string) =>
      typeof part === "string" ? part : new TextDecoder().decode(part)
    )
    : record.data;
  return `${nameOf(record)} ${record.type} ${JSON.stringify(data)}`;
}
