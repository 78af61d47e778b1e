/**
 * `blixard node …`: parse the configuration, set up logging, start the node, and stop it
 * gracefully on SIGINT or SIGTERM (a second signal stops it at once).
 *
 * @module
 */

import { parseNodeConfig } from "./node_config.ts";
import type { Environment } from "./cli.ts";
import { configureLogging, getLogger } from "../log/logging.ts";
import { startNode } from "../node/node.ts";

const STOP_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
/** Exit code when a second signal cuts a graceful stop short (128 + SIGINT, as shells do). */
const FORCED_EXIT_CODE = 130;

/** Runs a node until it stops; resolves to the process exit code. */
export async function runNodeCommand(args: readonly string[], env: Environment): Promise<number> {
  const config = parseNodeConfig(args, env);
  await configureLogging({ level: config.logLevel, format: config.logFormat });
  const log = getLogger(["blixard", "node"]);
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
