/**
 * The members of `zod/mini` that Blixard's schemas use, and nothing else: `zod_mini.ts`
 * exports them as the namespace `z`.
 *
 * Why a list: a bundler keeps every member of a namespace that escapes its module, and
 * `zod/mini`'s own `z` (and its `locales`, `core`) is such a namespace. Through it the
 * bundle carried all of zod, its 60-odd locales (~400 KB) and its JSON-schema and compiler
 * modules, which a node then loaded at every start. Named re-exports let the bundler drop
 * what is not named here (docs/benchmarks.md, "What the bundle loads").
 *
 * A schema that needs another member adds it here; `deno check` says so when it is missing.
 *
 * @module
 */

export {
  array,
  boolean,
  custom,
  discriminatedUnion,
  enum,
  extend,
  instanceof,
  int,
  literal,
  maximum,
  maxLength,
  minimum,
  minLength,
  NEVER,
  nonnegative,
  nullable,
  number,
  optional,
  pipe,
  positive,
  record,
  refine,
  regex,
  safeParse,
  strictObject,
  string,
  transform,
  tuple,
  union,
  unknown,
} from "zod/mini";
export type { infer, input, output, ZodMiniType } from "zod/mini";
// Types only: the value `core` would bring all of zod's core (its locales included) back.
export type * as core from "zod/v4/core";
