/**
 * Resources acquired during start-up, released in reverse order. Start-up pushes a
 * release action after each step that succeeds; if a later step fails, or when the node
 * stops, `releaseAll()` undoes what was done, newest first, so that a failed start leaves
 * no port bound and no lock held.
 *
 * @module
 */

import { getLogger } from "../../log/logging.ts";

const log = getLogger(["blixard", "node"]);

/** A stack of named release actions. */
export class ResourceStack {
  #actions: { name: string; release: () => unknown }[] = [];

  /** Remembers how to release `name`; it is released before everything pushed earlier. */
  push(name: string, release: () => unknown): void {
    this.#actions.push({ name, release });
  }

  /**
   * Releases everything, newest first. A failing release is logged and does not stop the
   * others: a stuck HTTP server must not keep the data dir locked.
   */
  async releaseAll(): Promise<void> {
    while (this.#actions.length > 0) {
      const { name, release } = this.#actions.pop()!;
      try {
        await release();
      } catch (error) {
        log.warn("releasing {name} failed: {error}", { name, error });
      }
    }
  }
}
