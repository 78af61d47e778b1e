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
 * apart, the proposed records in the Authority Section; a response that claims one of
 * them is a conflict, and the instance takes the next name, `-2`, `-3`, …, §9). Two hosts
 * probing one name at once break the tie by their proposed records (§8.2,
 * `record_order.ts`): the earlier one waits a second and probes again, and then meets the
 * winner's answer. It announces twice one second apart (§8.3), and again when its TXT
 * changes (§8.4; a change while it still probes goes out at once in one more probe). Once
 * announced, a response from another host with other data for one of its unique records
 * (SRV, TXT, A) is a conflict: it probes again (§9), at most 15 times in 10 s before it
 * slows to one probe round per 5 s. It answers queries by multicast, at
 * most once a second (§6: an answer due sooner waits for the second to end; an answer to
 * a probe, in defense of its name, after 250 ms; an answer that holds the shared PTR after
 * a random 20-120 ms, one of unique records at once), leaving out what the query lists as
 * known answers with at least half their TTL left (§7.1), and by unicast to legacy
 * resolvers that do not query from port 5353 (§6.7, what `dig -p 5353` does); and it
 * sends its records with TTL 0 when it stops (§10.1, goodbye). Answers are rate-limited,
 * so a flood of queries cannot turn the node into an amplifier.
 *
 * @module
 */

import { TokenBucket } from "../util/token_bucket.ts";
import { getLogger } from "../log/logging.ts";
import { sleep } from "../util/sleep.ts";
import { compareRecordSets } from "./record_order.ts";
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
/** RFC 6762 §8.1: probes per round. */
const PROBES = 3;
/** Names tried before giving up on advertising (RFC 6762 §9 renames on each conflict). */
const NAME_ATTEMPTS_MAX = 8;
/** RFC 6762 §8.3: announcements per round. */
const ANNOUNCEMENTS = 2;
/** RFC 6762 §9: more conflicts than this in `CONFLICT_WINDOW_MS` slow probing down. */
const CONFLICTS_MAX = 15;
const CONFLICT_WINDOW_MS = 10_000;
/**
 * How long a TXT this node advertised before is still taken for its own when it comes back
 * (looped back, or late from a busy event loop): a record's whole life. A TXT names this
 * node's P2P id, so no other host's can equal it.
 */
const OWN_ECHO_MS = RECORD_TTL_S * 1000;
/** Known answers of one query looked at. */
const KNOWN_ANSWERS_MAX = 64;
/** The unique records (RFC 6762 §2): a conflict is another host with other data for them. */
const UNIQUE_TYPES = new Set(["SRV", "TXT", "A"]);
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

/** The delays of RFC 6762; tests shorten them. */
export interface ResponderTiming {
  /** §8.1: the random delay before the first probe, at most this. */
  probeDelayMaxMs: number;
  /** §8.1: between probes, and after the last before announcing. */
  probeIntervalMs: number;
  /** §8.2: how long the loser of a simultaneous probe waits before it probes again. */
  tieBreakDeferMs: number;
  /** §8.3: between announcements. */
  announceIntervalMs: number;
  /** §6: the same records are multicast at most this often. */
  multicastIntervalMs: number;
  /** §6: an answer to a probe (defending the name) waits at most this. */
  probeDefenseIntervalMs: number;
  /** §9: the pause before each probe round once conflicts are too many. */
  conflictPauseMs: number;
  /**
   * §6: an answer that holds a shared record (a PTR, which every node on the link holds
   * for the service type) waits a random time from this…
   */
  sharedAnswerDelayMinMs: number;
  /** …to this, so that the answers of many nodes do not collide; unique ones go at once. */
  sharedAnswerDelayMaxMs: number;
}

/** The delays RFC 6762 gives. */
export const RFC6762_TIMING: ResponderTiming = {
  probeDelayMaxMs: 250,
  probeIntervalMs: 250,
  tieBreakDeferMs: 1_000,
  announceIntervalMs: 1_000,
  multicastIntervalMs: 1_000,
  probeDefenseIntervalMs: 250,
  conflictPauseMs: 5_000,
  sharedAnswerDelayMinMs: 20,
  sharedAnswerDelayMaxMs: 120,
};

/**
 * How long an answer of `answers` waits before it is multicast (RFC 6762 §6): a random time
 * in the shared-answer range when it holds a shared record (PTR), none when every record is
 * unique to this node (SRV, TXT, A: answers a querier that knows the instance, such as a
 * joiner resolving a node it found, get at once). `random` gives a number in [0, 1).
 */
export function answerDelayMs(
  answers: readonly DnsRecord[],
  context: { timing: ResponderTiming; random: () => number },
): number {
  if (!answers.some((record) => record.type === "PTR")) return 0;
  const { sharedAnswerDelayMinMs: min, sharedAnswerDelayMaxMs: max } = context.timing;
  return min + context.random() * (max - min);
}

/** What a probe round found. */
type ProbeOutcome = "won" | "conflict" | "deferred";

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
  readonly #timing: ResponderTiming;
  readonly #random: () => number;
  #txt: string[];
  #instanceLabel: string;
  #nameNumber = 1;
  #state: "probing" | "announced" | "gave_up" | "stopped" = "probing";
  #lastMulticastMs = Number.NEGATIVE_INFINITY;
  /** The answer waiting for the multicast interval to end: when, and its records by key. */
  #deferred: {
    timer: ReturnType<typeof setTimeout> | undefined;
    dueAtMs: number;
    answers: Map<string, DnsRecord>;
  } | null = null;
  /** What the probe round in progress has met. */
  #probeOutcome: ProbeOutcome = "won";
  /** Probes sent in the round in progress (0 during its random delay). */
  #probesSent = 0;
  /** When conflicts (and lost tie-breaks) happened, within `CONFLICT_WINDOW_MS`. */
  #conflictTimes: number[] = [];
  /** TXT records this node advertised before, until their echoes have died down. */
  #formerTxt: { key: string; untilMs: number }[] = [];
  #claiming: Promise<void> | null = null;

  /** A responder for `records`, with TXT `txt`; `start()` probes and announces. */
  constructor(
    socket: MulticastSocket,
    options: {
      records: ResponderRecords;
      txt: string[];
      events?: ResponderEvents;
      timing?: ResponderTiming;
      /** The random source of the probe and answer delays, in [0, 1); tests fix it. */
      random?: () => number;
    },
  ) {
    this.#socket = socket;
    this.#random = options.random ?? Math.random;
    this.#records = options.records;
    this.#events = options.events ?? {};
    this.#timing = options.timing ?? RFC6762_TIMING;
    this.#txt = options.txt;
    this.#instanceLabel = baseLabel(options.records);
    const ignore = (error: unknown) => log.debug("mDNS: packet ignored: {error}", { error });
    socket.on("query", guarded((packet, from) => this.#onQuery(packet, from), ignore));
    socket.on("response", guarded((packet) => this.#onResponse(packet), ignore));
  }

  /** `<instance>._blixard._udp.local`, lower case. */
  get instanceName(): string {
    return `${this.#instanceLabel}.${SERVICE_TYPE}`.toLowerCase();
  }

  /** `<host>.local`: the instance label, a valid host name. */
  get hostName(): string {
    return `${this.#instanceLabel}.local`.toLowerCase();
  }

  /** The state of its name: probing, announced, gave up (every name taken) or stopped. */
  get state(): "probing" | "announced" | "gave_up" | "stopped" {
    return this.#state;
  }

  /** Probes for a free name, then announces. Resolves once announced (or given up). */
  start(): Promise<void> {
    this.#claiming ??= this.#claim().finally(() => this.#claiming = null);
    return this.#claiming;
  }

  /** Probe rounds until one is won (then announce), renaming on each conflict (§8, §9). */
  async #claim(): Promise<void> {
    const signal = this.#stopping.signal;
    if (signal.aborted) return;
    this.#state = "probing";
    try {
      for (;;) {
        const outcome = await this.#probe(signal);
        if (outcome === "won") {
          this.#state = "announced";
          log.info("mDNS: advertising {instance}", { instance: this.instanceName });
          await this.#announce(signal);
          // A conflict while it announced (§9) sent it back to probing: another round.
          if (this.#state === "announced") return;
          continue;
        }
        this.#noteConflict();
        if (outcome === "deferred") {
          log.info("mDNS: another host probes for {instance} with later data; probing again", {
            instance: this.instanceName,
          });
          await sleep(this.#timing.tieBreakDeferMs, signal);
          continue;
        }
        if (this.#nameNumber >= NAME_ATTEMPTS_MAX) {
          this.#state = "gave_up";
          log.error("mDNS: every name tried is taken; this node is not advertised");
          return;
        }
        const taken = this.instanceName;
        this.#nameNumber += 1;
        this.#instanceLabel = `${baseLabel(this.#records)}-${this.#nameNumber}`;
        log.warn("mDNS: {taken} is taken on the network; trying {next}", {
          taken,
          next: this.instanceName,
        });
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  /**
   * Replaces the TXT record and announces it (RFC 6762 §8.4). While the name is still being
   * probed for, nothing may be announced yet: once the round's first probe is out, the new
   * record is proposed at once in one more probe (§8.2: a probe carries the records it
   * proposes), rather than in the next probe up to 250 ms later; the round's three probes
   * and the 250 ms after the third are unchanged. Before the first probe, it carries them.
   */
  async updateTxt(txt: string[]): Promise<void> {
    this.updateTxtQuietly(txt);
    if (this.#state === "probing" && this.#probesSent > 0) this.#sendProbe();
    if (this.#state !== "announced") return;
    try {
      await this.#announce(this.#stopping.signal);
    } catch (error) {
      if (!this.#stopping.signal.aborted) throw error;
    }
  }

  /** Replaces the TXT record without announcing it: the next answer carries it. */
  updateTxtQuietly(txt: string[]): void {
    const nowMs = performance.now();
    const former = recordKey(this.#instanceRecords(RECORD_TTL_S)[1]!);
    this.#formerTxt = [
      ...this.#formerTxt.filter((entry) => entry.untilMs > nowMs),
      { key: former, untilMs: nowMs + OWN_ECHO_MS },
    ].slice(-8);
    this.#txt = txt;
  }

  /** Sends the goodbye (every record with TTL 0) if it was announced; answers nothing after. */
  async stop(): Promise<void> {
    const announced = this.#state === "announced";
    this.#state = "stopped";
    this.#stopping.abort(new Error("the mDNS responder stopped"));
    clearTimeout(this.#deferred?.timer);
    this.#deferred = null;
    if (!announced) return;
    const goodbye = this.#allRecords(RECORD_TTL_S).map((record) => ({ ...record, ttl: 0 }));
    const error = await sendResponse(this.#socket, { answers: goodbye });
    if (error !== null) log.warn("mDNS: goodbye not sent: {error}", { error: error.message });
  }

  async #probe(signal: AbortSignal): Promise<ProbeOutcome> {
    await this.#pauseAfterManyConflicts(signal);
    this.#probeOutcome = "won";
    try {
      await sleep(this.#random() * this.#timing.probeDelayMaxMs, signal);
      for (let probe = 0; probe < PROBES; probe++) {
        this.#sendProbe();
        await sleep(this.#timing.probeIntervalMs, signal);
        if (this.#probeOutcome !== "won") return this.#probeOutcome;
      }
      return this.#probeOutcome;
    } finally {
      // Between rounds (a lost tie-break's second, a rename) a change waits for the next.
      this.#probesSent = 0;
    }
  }

  /** One probe (§8.1): a query for our names, the records we propose in its Authority Section. */
  #sendProbe(): void {
    this.#probesSent += 1;
    this.#socket.query({
      questions: [
        { name: this.instanceName, type: "ANY" },
        { name: this.hostName, type: "ANY" },
      ],
      authorities: this.#uniqueRecords(RECORD_TTL_S),
    });
  }

  /** RFC 6762 §9: after 15 conflicts within 10 s, each probe round waits 5 s first. */
  async #pauseAfterManyConflicts(signal: AbortSignal): Promise<void> {
    const nowMs = performance.now();
    this.#conflictTimes = this.#conflictTimes.filter((atMs) => nowMs - atMs < CONFLICT_WINDOW_MS);
    if (this.#conflictTimes.length < CONFLICTS_MAX) return;
    log.warn("mDNS: {count} name conflicts within 10 s; probing again in 5 s", {
      count: this.#conflictTimes.length,
    });
    await sleep(this.#timing.conflictPauseMs, signal);
  }

  #noteConflict(): void {
    this.#conflictTimes = [...this.#conflictTimes, performance.now()].slice(-CONFLICTS_MAX * 2);
  }

  async #announce(signal: AbortSignal): Promise<void> {
    for (let announcement = 0; announcement < ANNOUNCEMENTS; announcement++) {
      if (announcement > 0) await sleep(this.#timing.announceIntervalMs, signal);
      if (this.#state !== "announced") return;
      this.#lastMulticastMs = performance.now();
      const error = await sendResponse(this.#socket, { answers: this.#allRecords(RECORD_TTL_S) });
      if (error !== null) {
        log.warn("mDNS: announcement not sent: {error}", { error: error.message });
      } else this.#events.onAnnounced?.();
    }
  }

  #onQuery(packet: DnsPacket, from: RemoteInfo): void {
    if (this.#state === "probing") this.#breakProbeTie(packet);
    else if (this.#state === "announced") this.#answer(packet, from);
  }

  /**
   * RFC 6762 §8.2: a probe of another host for one of our names while we probe it too.
   * Its Authority Section holds the records it proposes; when ours are lexicographically
   * earlier we lose, wait, and probe again. Our own probe, looped back, is identical.
   */
  #breakProbeTie(packet: DnsPacket): void {
    const authorities = (packet.authorities ?? []).slice(0, QUESTIONS_MAX * 4);
    if (authorities.length === 0) return;
    const asked = new Set(packet.questions.slice(0, QUESTIONS_MAX).map((q) => lower(q.name)));
    const ours = this.#uniqueRecords(RECORD_TTL_S);
    for (const name of [this.instanceName, this.hostName]) {
      if (!asked.has(name)) continue;
      const theirs = authorities.filter((record) => nameOf(record) === name);
      // Our own probe, looped back, perhaps with the TXT we had before a change.
      if (theirs.every((record) => this.#isOwn(record))) continue;
      const order = compareRecordSets(ours.filter((record) => nameOf(record) === name), theirs);
      if (order < 0 && this.#probeOutcome === "won") this.#probeOutcome = "deferred";
    }
  }

  /**
   * A response from another host with other data for one of our unique records is a
   * conflict: while probing, the name is taken (§8.1); once announced, both hosts probe
   * again (§9), and the tie-break or the winner's answer settles who keeps it.
   */
  #onResponse(packet: DnsPacket): void {
    if (this.#state !== "probing" && this.#state !== "announced") return;
    const claims = [...packet.answers, ...packet.additionals].slice(0, QUESTIONS_MAX * 4);
    if (!claims.some((record) => this.#conflictsWithUs(record))) return;
    if (this.#state === "probing") {
      this.#probeOutcome = "conflict";
      return;
    }
    log.warn("mDNS: another host answers for {instance} with other data; probing again", {
      instance: this.instanceName,
    });
    this.#noteConflict();
    this.#state = "probing";
    clearTimeout(this.#deferred?.timer);
    this.#deferred = null;
    // A claim still announcing sees the state and probes again; else a new one starts.
    this.start().catch((error) => {
      log.error("mDNS: probing again failed: {error}", { error: String(error) });
    });
  }

  /** Whether `record`, from the network, claims one of our unique names with other data. */
  #conflictsWithUs(record: DnsRecord): boolean {
    const name = nameOf(record);
    if (name !== this.instanceName && name !== this.hostName) return false;
    // A goodbye (TTL 0) gives a name up; a shared record (PTR) is no claim.
    if (record.ttl === 0 || !UNIQUE_TYPES.has(record.type)) return false;
    return !this.#isOwn(record);
  }

  /** Whether `record` is one of ours: current, or a TXT we had until a moment ago. */
  #isOwn(record: DnsRecord): boolean {
    const key = recordKey(record);
    if (this.#uniqueRecords(RECORD_TTL_S).some((mine) => recordKey(mine) === key)) return true;
    const nowMs = performance.now();
    return this.#formerTxt.some((former) => former.key === key && former.untilMs > nowMs);
  }

  #answer(packet: DnsPacket, from: RemoteInfo): void {
    const legacy = from.port !== MDNS_PORT;
    const ttl = legacy ? LEGACY_TTL_S : RECORD_TTL_S;
    const known = knownAnswers(packet);
    const answers: DnsRecord[] = [];
    let answered: { name: string; type: string } | null = null;
    for (const question of packet.questions.slice(0, QUESTIONS_MAX)) {
      const name = lower(question.name);
      // RFC 6762 §7.1: what the querier knows, with half its TTL left, is not sent again.
      const found = this.#answersTo(name, question.type, ttl)
        .filter((record) => !known.has(recordKey(record)));
      // Echoed to a legacy resolver: our own name and a type we answer, never its bytes.
      if (found.length > 0) answered ??= { name, type: found.length > 1 ? "ANY" : found[0]!.type };
      answers.push(...found);
    }
    if (answers.length === 0) return;
    const additionals = (answers: DnsRecord[]) =>
      this.#allRecords(ttl).filter((record) =>
        !known.has(recordKey(record)) &&
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
        additionals: unflushed(additionals(answers)),
      }, { address: from.address, port: from.port });
      return;
    }
    // RFC 6762 §6: multicast at most once a second (in defense of our name against a
    // probe, after 250 ms), and an answer with a shared record after 20-120 ms. Within that
    // time the answer waits, and one pending answer serves all the queries meanwhile: a
    // unicast to port 5353 could reach another node's socket on the same host instead.
    const isProbe = (packet.authorities ?? []).length > 0;
    const nowMs = performance.now();
    const dueAtMs = Math.max(
      this.#lastMulticastMs +
        (isProbe ? this.#timing.probeDefenseIntervalMs : this.#timing.multicastIntervalMs),
      nowMs + answerDelayMs(answers, { timing: this.#timing, random: this.#random }),
    );
    if (nowMs >= dueAtMs && this.#deferred === null) {
      this.#lastMulticastMs = nowMs;
      this.#send({ answers, additionals: additionals(answers) }, null);
      return;
    }
    const deferred = this.#deferred ?? {
      timer: undefined,
      dueAtMs: Number.POSITIVE_INFINITY,
      answers: new Map<string, DnsRecord>(),
    };
    this.#deferred = deferred;
    for (const answer of answers) deferred.answers.set(recordKey(answer), answer);
    if (dueAtMs >= deferred.dueAtMs) return;
    clearTimeout(deferred.timer);
    deferred.dueAtMs = dueAtMs;
    deferred.timer = setTimeout(() => {
      this.#deferred = null;
      if (this.#state !== "announced") return;
      this.#lastMulticastMs = performance.now();
      const pending = [...deferred.answers.values()];
      this.#send({ answers: pending, additionals: additionals(pending) }, null);
    }, Math.max(0, dueAtMs - nowMs));
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

  /** The records only this node may hold (RFC 6762 §2): SRV, TXT and A, probed for. */
  #uniqueRecords(ttl: number): DnsRecord[] {
    return [...this.#instanceRecords(ttl), ...this.#addressRecords(ttl)];
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
  return lower(record.name);
}

/** A name from the network, lower case; anything else is the empty name. */
function lower(name: unknown): string {
  return typeof name === "string" ? name.toLowerCase() : "";
}

/**
 * The keys of a query's known answers (RFC 6762 §7.1) that still have at least half of
 * our TTL left: those the querier has, which the answer leaves out.
 */
function knownAnswers(packet: DnsPacket): Set<string> {
  return new Set(
    packet.answers.slice(0, KNOWN_ANSWERS_MAX)
      .filter((record) => (record.ttl ?? 0) >= RECORD_TTL_S / 2)
      .map(recordKey),
  );
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
