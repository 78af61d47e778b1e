/**
 * `SelfAnnouncer`: keeps this node's record in the replicated member info equal to how it
 * can be reached now. Its addresses change on a restart with another `--bind`; its relay
 * URL whenever the Iroh endpoint reaches a home relay or changes it (issue 11: the relay a
 * member records is the one its endpoint really uses, not the configured `--relay-url`,
 * which may be unreachable, or stand behind another). Joiners, tickets and `BlixardClient`
 * dial the recorded relay.
 *
 * One announcement runs at a time; a change seen while it runs is sent after it.
 *
 * @module
 */

import { getLogger } from "../../log/logging.ts";
import type { MemberInfo } from "../../state_machine/member_info.ts";
import type { Scheduler } from "../../util/scheduler.ts";
import { sleepOn } from "../../util/sleep.ts";
import { sameAddresses } from "./member_directory.ts";

const log = getLogger(["blixard", "node"]);

/** Pause between attempts while no leader takes the announcement. */
export const ANNOUNCE_RETRY_MS = 250;
/** Deadline of one attempt. */
const ANNOUNCE_ATTEMPT_MS = 5_000;

/**
 * This node's record to announce: `now`, except that while a configured relay is not
 * reached yet (`now.relayUrl` null, `relayConfigured`), the recorded relay stays: a
 * restart must not erase a relay that will be reached in a moment.
 */
export function recordToAnnounce(
  now: MemberInfo,
  context: { recorded: MemberInfo | null; relayConfigured: boolean },
): MemberInfo {
  if (now.relayUrl !== null || !context.relayConfigured) return now;
  return { ...now, relayUrl: context.recorded?.relayUrl ?? null };
}

/** What `SelfAnnouncer` reads and calls. */
export interface SelfAnnouncerOptions {
  /** This node's record as it is now (its endpoint's addresses and home relay). */
  current: () => MemberInfo;
  /** This node's record in the applied member info, or `null` when there is none. */
  recorded: () => MemberInfo | null;
  /** Proposes `member` through the leader; resolves with the entry's index once applied. */
  send: (member: MemberInfo, signal: AbortSignal) => Promise<{ index: number }>;
  scheduler: Scheduler;
  /** Aborted when the node stops: no further attempt. */
  signal: AbortSignal;
}

/** Announces this node's record whenever it differs from the recorded one. */
export class SelfAnnouncer {
  readonly #options: SelfAnnouncerOptions;
  /** The announcement under way, or `null`. */
  #running: Promise<void> | null = null;

  constructor(options: SelfAnnouncerOptions) {
    this.#options = options;
  }

  /**
   * Compares the current record with the recorded one and, when they differ, announces it.
   * Resolves once this node's record is announced (or needed no announcement), or it stops.
   * A change seen while an announcement runs is picked up by it: each round reads the
   * record afresh, and only a round that finds nothing to send ends it.
   */
  check(): Promise<void> {
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #run(): Promise<void> {
    const { current, recorded, send, scheduler, signal } = this.#options;
    let sent: MemberInfo | null = null;
    while (!signal.aborted) {
      const self = current();
      const known = sent ?? recorded();
      if (known !== null && sameAddresses(known, self)) return;
      log.info("addresses changed to {addresses} (relay {relay}): announcing them", {
        addresses: self.addresses.join(","),
        relay: self.relayUrl ?? "none",
      });
      try {
        const attempt = AbortSignal.any([signal, AbortSignal.timeout(ANNOUNCE_ATTEMPT_MS)]);
        const { index } = await send(self, attempt);
        log.info("new addresses recorded at index {index}", { index });
        sent = self;
        continue;
      } catch (error) {
        log.debug("announcing addresses failed, retrying: {error}", { error });
      }
      // Stopping ends the pause at once; the loop then ends.
      await sleepOn(scheduler, { durationMs: ANNOUNCE_RETRY_MS, signal }).catch(() => {});
    }
  }
}
