/**
 * The members of `prom-client` that `metrics.ts` imports on the first `/metrics`.
 *
 * Why a module of its own: in the code-split bundle (`scripts/bundle.ts`) a dynamic
 * `import()` of a CommonJS package resolves to a chunk that exports only `default`, so the
 * named members read `undefined`; a module of ours that imports them statically becomes an
 * ES chunk that exports them by name, from the sources and the bundle alike.
 *
 * @module
 */

export { collectDefaultMetrics, Registry } from "prom-client";
