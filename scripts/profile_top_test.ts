import { strict as assert } from "node:assert";
import { inclusiveTimes, partOf, type Profile, selfTimes } from "./profile_top.ts";

function frame(id: number, functionName: string, url: string, children: number[] = []) {
  return { id, callFrame: { functionName, url, lineNumber: 0 }, children };
}

// root → main.ts → zod → src/node → zod (a part on the stack twice), and an idle sample.
const profile: Profile = {
  nodes: [
    frame(1, "(root)", "", [2, 6]),
    frame(2, "run", "file:///x/src/cli/cli.ts", [3]),
    frame(3, "parse", "file:///x/node_modules/zod/v4/core/schemas.js", [4]),
    frame(4, "handler", "file:///x/src/node/assembly/node.ts", [5]),
    frame(5, "check", "file:///x/node_modules/zod/v4/core/parse.js"),
    frame(6, "(idle)", ""),
  ],
  samples: [5, 4, 6, 2],
  timeDeltas: [1000, 2000, 4000, 3000],
  startTime: 0,
  endTime: 10_000,
};

Deno.test("inclusiveTimes() counts a sample once per part on its stack and leaves idle out", () => {
  const times = inclusiveTimes(profile, partOf);
  assert.deepEqual(Object.fromEntries(times), {
    "npm:zod": 3,
    "src/node": 3,
    "src/cli": 6,
  });
  assert.equal(selfTimes(profile, (node) => partOf(node) ?? "(root)").get("npm:zod"), 1);
});

Deno.test("inclusiveTimes() keeps only the samples inside the window", () => {
  // Samples end at 1, 3, 7 and 10 ms: the window 2–8 ms holds the second and third.
  const times = inclusiveTimes(profile, partOf, { fromUs: 2000, toUs: 8000 });
  assert.deepEqual(Object.fromEntries(times), { "npm:zod": 2, "src/node": 2, "src/cli": 2 });
});

Deno.test("partOf() names Deno's Node layer, Deno's extensions, V8 and npm packages", () => {
  const part = (url: string, functionName = "f") => partOf(frame(9, functionName, url));
  assert.equal(part("node:module"), "Deno's Node layer");
  assert.equal(part("ext:deno_node/util.ts"), "Deno's Node layer");
  assert.equal(part("ext:core/01_core.js"), "Deno (ext:core)");
  assert.equal(part("", "(garbage collector)"), "(garbage collector)");
  assert.equal(part("", "op_napi_open"), "(native)");
  assert.equal(part("", "(root)"), null);
  assert.equal(part("file:///x/node_modules/@number0/iroh/index.js"), "npm:@number0/iroh");
});
