import assert from "node:assert/strict";
import { defineRequire, REQUIRE_DEFINITION } from "./bundle.ts";

const STAND_IN = `var a=(t=>typeof require<"u"?require:t)(function(t){` +
  `throw Error('Dynamic require of "'+t+'" is not supported')});`;
const map = (mappings: string) => JSON.stringify({ version: 3, mappings });

Deno.test("defineRequire() defines require in a new first line and shifts the map by it", () => {
  const bundled = defineRequire({ code: `${STAND_IN}a("node:os");`, map: map("AAAA;CAAC") });
  assert.equal(bundled.code, `${REQUIRE_DEFINITION}\n${STAND_IN}a("node:os");`);
  assert.equal(JSON.parse(bundled.map).mappings, ";AAAA;CAAC");
  // Once is enough: a second pass leaves it as it is.
  assert.deepEqual(defineRequire(bundled), bundled);
});

Deno.test("defineRequire() leaves a bundle without the stand-in, or with Deno's own require", () => {
  const plain = { code: "console.log(1);", map: map("AAAA") };
  assert.deepEqual(defineRequire(plain), plain);
  const denoDefined = {
    code: `import { createRequire as __deno_internal_createRequire } from "node:module";\n` +
      `var __require = __deno_internal_createRequire(import.meta.url);\n${STAND_IN}`,
    map: map("AAAA"),
  };
  assert.deepEqual(defineRequire(denoDefined), denoDefined);
});
