/**
 * `NativeCalls`: the calls into the Iroh binding that one endpoint has running, so that
 * closing the endpoint can wait until none is left.
 *
 * Why this exists: napi-rs runs each async method of a binding object as a future on the
 * binding's Tokio threads, and that future borrows the native object. Deno runs every
 * Node-API finalizer when a test module's worker ends (denoland/deno#35695), reachable
 * object or not, and a finalizer frees the native object. If a call on it is still running
 * then (a `close()` not awaited to the end, a stream's fire-and-forget reset), the future
 * reads freed memory: `tokio-rt-worker … segfault … in iroh.linux-x64-gnu.node`, which
 * killed the test runner. A test module that ends with such a call running reproduces it
 * in a few seconds (docs/decisions.md, "Native calls end before their objects").
 *
 * @module
 */

/** The binding calls of one endpoint that have not settled yet. */
export class NativeCalls {
  readonly #running = new Set<Promise<unknown>>();

  /** `call`, remembered until it settles. Its result and rejection reach the caller as they are. */
  track<T>(call: Promise<T>): Promise<T> {
    this.#running.add(call);
    const forget = () => this.#running.delete(call);
    call.then(forget, forget);
    return call;
  }

  /** How many calls are running. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Resolves once every call has settled, including calls made while it waits; `false`
   * if some are still running after `waitMs`.
   */
  async settled(waitMs: number): Promise<boolean> {
    const deadline = performance.now() + waitMs;
    while (this.#running.size > 0) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const elapsed = new Promise((resolve) => timer = setTimeout(resolve, left));
      await Promise.race([Promise.allSettled(this.#running), elapsed]);
      clearTimeout(timer);
    }
    return true;
  }
}
