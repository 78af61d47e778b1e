import assert from "node:assert/strict";
import { z } from "zod";
import { lazySchema } from "./lazy_schema.ts";

Deno.test("lazySchema() builds its schema on the first use, once, and validates as the schema does", () => {
  let builds = 0;
  const schema = lazySchema(() => {
    builds++;
    return z.strictObject({ id: z.int().min(1) });
  });
  assert.equal(builds, 0);
  assert.deepEqual(schema.parse({ id: 3 }), { id: 3 });
  const refused = schema.safeParse({ id: 0 });
  assert.equal(refused.success, false);
  assert.deepEqual(
    refused.error?.issues.map((issue) => [issue.path.join("."), issue.message]),
    [["id", "Too small: expected number to be >=1"]],
  );
  assert.throws(() => schema.parse({ id: 1, extra: true }), /Unrecognized key: \\"extra\\"/);
  assert.equal(builds, 1);
});

Deno.test("lazySchema() stands in for its schema inside another schema and for instanceof", () => {
  const inner = lazySchema(() => z.string().max(3));
  const outer = lazySchema(() => z.strictObject({ name: inner, alias: inner.optional() }));
  assert(outer instanceof z.ZodObject);
  assert.deepEqual(outer.parse({ name: "abc" }), { name: "abc" });
  assert.equal(outer.safeParse({ name: "abcd" }).error?.issues[0]?.path.join("."), "name");
  assert.equal(outer.safeParse({ name: "a", alias: 4 }).error?.issues[0]?.path.join("."), "alias");
});

Deno.test("a node's start loads its module graph without building any zod schema", async () => {
  // zod calls this hook for every schema it builds; it is how `zod/compile` sees them.
  const config = { built: 0, postProcessor: () => config.built++ };
  Object.assign(globalThis, { __zod_globalConfig: config });
  try {
    z.string();
    assert.equal(config.built, 1, "zod no longer reports the schemas it builds");
    await import("../cli/node_command.ts");
    assert.equal(config.built, 1, "schemas built at module load: wrap them in lazySchema()");
  } finally {
    Reflect.deleteProperty(globalThis, "__zod_globalConfig");
  }
});
