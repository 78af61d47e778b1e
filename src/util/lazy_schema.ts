/**
 * `lazySchema`: a schema built on its first use instead of when its module loads.
 *
 * A node's start loads every module that declares a zod schema (about 290 `z.…()` calls),
 * and building them was a tenth of a start's CPU (docs/benchmarks.md, "Start-up CPU: zod
 * schemas built on first use"), although a start parses only a few of them. A schema wrapped
 * here is built, once, by the first property read: a `parse` or `safeParse`, or another
 * schema's build that embeds it. Validation itself does not change: every input still goes
 * through the same schema before any work is spent on it.
 *
 * @module
 */

/**
 * Returns a stand-in for the schema `build()` returns, which builds it on the first read of
 * any of its properties and forwards every read to it from then on. `build` must be pure (it
 * runs at an unknown later time) and is called at most once.
 */
export function lazySchema<Schema extends object>(build: () => Schema): Schema {
  let schema: Schema | undefined;
  const built = (): Schema => schema ??= build();
  // A Proxy rather than a getter per use: the stand-in has the schema's type and can be passed
  // anywhere the schema could (`.parse`, `z.infer<typeof …>`, inside another schema).
  return new Proxy({} as Schema, {
    get: (_target, key) => Reflect.get(built(), key),
    has: (_target, key) => Reflect.has(built(), key),
    getPrototypeOf: () => Reflect.getPrototypeOf(built()),
  });
}
