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

/** A native endpoint whose `close()` is running, as {@linkcode holdWhileClosing} sees it. */
export interface ClosingNative {
  /** True once the binding's close has finished (a synchronous read of the endpoint's flag). */
  isClosed(): boolean;
}

/** The longest the `unload` event waits, in all, for closes still running. */
const UNLOAD_CLOSE_WAIT_MS = 3_000;
/**
 * After the closed flag is set, the close future still returns and is dropped on a binding
 * thread; this pause covers that last step (microseconds of work) on a loaded machine.
 */
const UNLOAD_CLOSE_RETURN_PAUSE_MS = 20;

/** Native endpoints whose close is running: what to call them, and where the close began. */
const closesRunning = new Map<ClosingNative, { description: string; calledFrom: Error }>();
let unloadListening = false;

/**
 * Holds `native` until `close` settles, so that neither the garbage collector nor the end of
 * a test module can finalize it while its close future runs on the binding's threads. The
 * `unload` event (a test module's end, `Deno.exit`) waits synchronously, up to 3 s in all,
 * until every held endpoint reports closed: Deno runs the Node-API finalizers right after
 * it, and a finalizer that frees an endpoint mid-close makes Iroh's close take its socket
 * actor's task handle out of freed memory and abort the process ("JoinHandle polled after
 * completion", docs/decisions.md). Returns `close`.
 */
export function holdWhileClosing(
  native: ClosingNative,
  description: string,
  close: Promise<void>,
): Promise<void> {
  if (!unloadListening) {
    globalThis.addEventListener("unload", waitForClosesRunning);
    unloadListening = true;
  }
  // The stack names the code that did not wait for its close (printed only at exit).
  closesRunning.set(native, { description, calledFrom: new Error("close() called") });
  const release = () => closesRunning.delete(native);
  close.then(release, release);
  return close;
}

/**
 * Stops holding `native`'s close for the exit: for a process that ends with `Deno.exit`
 * right after a bounded wait for the close, which runs no finalizers and so needs no wait.
 */
export function releaseClose(native: ClosingNative): void {
  closesRunning.delete(native);
}

/** How many endpoint closes are running and held (for tests). */
export function closesHeld(): number {
  return closesRunning.size;
}

function waitForClosesRunning(): void {
  if (closesRunning.size === 0) return;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + UNLOAD_CLOSE_WAIT_MS;
  for (const [native, { description, calledFrom }] of closesRunning) {
    // A plain write: the logger's sinks may not flush during unload.
    console.error(
      `blixard: ${description} was still closing at exit; waiting for it. ${calledFrom.stack}`,
    );
    while (!native.isClosed() && performance.now() < deadline) Atomics.wait(pause, 0, 0, 2);
  }
  Atomics.wait(pause, 0, 0, UNLOAD_CLOSE_RETURN_PAUSE_MS);
}
