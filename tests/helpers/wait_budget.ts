/**
 * How long the end-to-end helpers wait for a state (a node up, a leader, voters, writes):
 * 30 s, generous for CI's shared machines. `BLIXARD_TEST_WAIT_MS` raises it for long runs
 * at low priority on a loaded machine (`BLIXARD_TEST_WAIT_MS=120000 deno task chaos`).
 *
 * @module
 */

const DEFAULT_MS = 30_000;
const MAX_MS = 3_600_000;

function fromEnvironment(): number {
  const text = Deno.env.get("BLIXARD_TEST_WAIT_MS");
  if (text === undefined) return DEFAULT_MS;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < DEFAULT_MS || value > MAX_MS) {
    throw new Error(
      `BLIXARD_TEST_WAIT_MS=${text}: must be an integer from ${DEFAULT_MS} to ${MAX_MS} (ms)`,
    );
  }
  return value;
}

/** The helpers' deadline for a state, in ms. */
export const WAIT_MS = fromEnvironment();
