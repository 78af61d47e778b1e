/**
 * `blixard node …`: parse the configuration, set up logging, start the node, and stop it
 * gracefully on SIGINT or SIGTERM (a second signal stops it at once). An error nothing
 * handled (a storage write that failed inside the Ready loop for another reason than a full
 * disk, which the node waits out) stops the process at once with one line saying what to do.
 *
 * @module
 */

import { parseNodeConfig } from "./node_config.ts";
import type { Environment } from "./cli.ts";
import { configureLogging, getLogger } from "../log/logging.ts";
import { startNode } from "../node/assembly/node.ts";
import { isDiskFullError } from "../storage/storage.ts";

const STOP_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
/** Exit code when a second signal cuts a graceful stop short (128 + SIGINT, as shells do). */
const FORCED_EXIT_CODE = 130;
/** Exit code after an error nothing handled. */
const FATAL_EXIT_CODE = 1;

/** Runs a node until it stops; resolves to the process exit code. */
export async function runNodeCommand(args: readonly string[], env: Environment): Promise<number> {
  const config = parseNodeConfig(args, env);
  await configureLogging({ level: config.logLevel, format: config.logFormat });
  const log = getLogger(["blixard", "node"]);
  stopOnUncaughtError(config.dataDir);
  const node = await startNode(config);
  let signalsSeen = 0;
  const onSignal = (signal: Deno.Signal) => {
    signalsSeen++;
    if (signalsSeen > 1) {
      log.warn("second {signal}: stopping at once", { signal });
      Deno.exit(FORCED_EXIT_CODE);
    }
    log.info("received {signal}: stopping gracefully (send it again to stop at once)", { signal });
    node.stop(`received ${signal}`);
  };
  const listeners = STOP_SIGNALS.map((signal) => {
    const listener = () => onSignal(signal);
    Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });
  try {
    return await node.finished;
  } finally {
    for (const { signal, listener } of listeners) Deno.removeSignalListener(signal, listener);
  }
}

/**
 * Makes an error that escaped every handler one log line and exit 1, at once. Such an
 * error is a storage write that failed inside the Ready loop: the Raft state in memory
 * is then ahead of the disk, so the node must not go on, and a graceful stop would
 * write more. Nothing acknowledged is lost: an acknowledgement follows the write to a
 * majority's disks, and a restart rebuilds the node from its own.
 */
function stopOnUncaughtError(dataDir: string): void {
  const log = getLogger(["blixard", "node"]);
  const stop = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    if (isDiskFullError(error)) {
      log.fatal(
        "the disk of --data-dir {dataDir} is full ({message}): the node stops; free space " +
          "there and start it again (no acknowledged write is lost)",
        { dataDir, message },
      );
    } else {
      log.fatal("stopping after an unexpected error: {message}", {
        message,
        stack: error instanceof Error ? error.stack : undefined,
      });
    }
    Deno.exit(FATAL_EXIT_CODE);
  };
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    stop(event.error);
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    stop(event.reason);
  });
}
