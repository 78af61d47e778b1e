/**
 * The environment of every `deno run main.ts …` child a test starts: nothing from the
 * test's own environment leaks in, except what Deno itself needs to run fast.
 *
 * @module
 */

/**
 * Deno's cache of transpiled modules and V8 code caches, as the test process resolves it.
 * A child whose `XDG_CACHE_HOME` points at a fresh directory (the CLI's peer cache does)
 * would otherwise get a fresh, empty Deno cache too, and transpile every module again:
 * about 0.3 CPU-seconds per command, which on CI's two cores is most of a CLI run.
 */
function denoCacheDir(): string {
  const explicit = Deno.env.get("DENO_DIR");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/deno`;
  return `${Deno.env.get("HOME") ?? "/tmp"}/.cache/deno`;
}

/** The base environment of a child `blixard` process; callers add their own variables. */
export function childEnv(): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    DENO_DIR: denoCacheDir(),
    NO_COLOR: "1",
  };
}
