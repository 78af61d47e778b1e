/**
 * The top of a V8 CPU profile (`deno run --cpu-prof`, or `deno task bench --cpu-prof DIR`):
 * the functions with the most self time, self time by source file, and inclusive time by part
 * (an npm package, a folder of `src/`, Deno's Node layer, the rest of Deno, V8's own work),
 * as Markdown tables. Inclusive time by part is what a start's profile needs: a module's
 * loading is spread over many small functions, and a library's cost includes the Node-layer
 * modules it makes Deno load.
 *
 * Usage: deno run --allow-read scripts/profile_top.ts FILE.cpuprofile… [--top 25]
 *          [--from SECONDS --to SECONDS]
 *
 * `--from` and `--to` keep only the samples of a window, in seconds since boot (the clock of
 * the profile's `startTime`, and of the windows the bench writes to its JSON), so that a
 * node's start-up does not mix with the load.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One node of a profile's call tree. */
export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** A V8 CPU profile, as `--cpu-prof` writes it. */
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time in milliseconds by key, from a profile's samples. */
export function selfTimes(
  profile: Profile,
  keyOf: (node: ProfileNode) => string,
  window: { fromUs: number; toUs: number } = { fromUs: -Infinity, toUs: Infinity },
): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const times = new Map<string, number>();
  forEachSampleIn(profile, window, (id, deltaUs) => {
    const key = keyOf(byId.get(id)!);
    times.set(key, (times.get(key) ?? 0) + deltaUs / 1000);
  });
  return times;
}

/** Calls `visit` with each sample's node id and duration whose time falls in `window`. */
function forEachSampleIn(
  profile: Profile,
  window: { fromUs: number; toUs: number },
  visit: (id: number, deltaUs: number) => void,
): void {
  let atUs = profile.startTime;
  profile.samples.forEach((id, i) => {
    const deltaUs = profile.timeDeltas[i] ?? 0;
    atUs += deltaUs;
    if (atUs >= window.fromUs && atUs <= window.toUs) visit(id, deltaUs);
  });
}

/**
 * Inclusive time in milliseconds by key: each sample counts once for every distinct key on
 * its stack (so a part that calls itself through another is not counted twice). Idle
 * samples and keys `null` are left out.
 */
export function inclusiveTimes(
  profile: Profile,
  keyOf: (node: ProfileNode) => string | null,
  window: { fromUs: number; toUs: number } = { fromUs: -Infinity, toUs: Infinity },
): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parentOf.set(child, node.id);
  }
  const times = new Map<string, number>();
  forEachSampleIn(profile, window, (id, deltaUs) => {
    if (byId.get(id)?.callFrame.functionName === "(idle)") return;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const key = keyOf(byId.get(at)!);
      if (key === null || seen.has(key)) continue;
      seen.add(key);
      times.set(key, (times.get(key) ?? 0) + deltaUs / 1000);
    }
  });
  return times;
}

/**
 * The part a frame belongs to: `npm:<package>`, `src/<folder>`, `Deno's Node layer`
 * (`node:*`, `ext:deno_node`), `Deno (ext:<extension>)`, V8's `(program)` and
 * `(garbage collector)`, `(native)` for other native calls; `null` for the root.
 */
export function partOf(node: ProfileNode): string | null {
  const { url, functionName } = node.callFrame;
  if (url === "") {
    if (functionName === "(root)") return null;
    return functionName.startsWith("(") ? functionName : "(native)";
  }
  const inPackage = /node_modules\/(?:\.deno\/[^/]+\/node_modules\/)?(@[^/]+\/[^/]+|[^/]+)/.exec(
    url,
  );
  if (inPackage !== null) return `npm:${inPackage[1]}`;
  const inTree = /\/(src|scripts|tests)\/([^/]+)\//.exec(url);
  if (inTree !== null) return `${inTree[1]}/${inTree[2]}`;
  if (url.startsWith("node:") || url.includes("ext:deno_node")) return "Deno's Node layer";
  const extension = /ext:([^/]+)/.exec(url);
  if (extension !== null) return `Deno (ext:${extension[1]})`;
  return shortUrl(url);
}

function shortUrl(url: string): string {
  const inTree = /\/(src|node_modules|scripts)\/(.*)$/.exec(url);
  if (inTree !== null) return `${inTree[1]}/${inTree[2]}`;
  return url === "" ? "(native/VM)" : url.replace(/^.*\/ext:/, "ext:");
}

function table(title: string, times: Map<string, number>, totalMs: number, top: number): string {
  const rows = [...times].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `| ${title} | self ms | % |`,
    "| --- | ---: | ---: |",
    ...rows.map(([key, ms]) =>
      `| ${key.replaceAll("|", "\\|")} | ${ms.toFixed(0)} | ${(100 * ms / totalMs).toFixed(1)} |`
    ),
  ].join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      top: { type: "string", default: "25" },
      from: { type: "string" },
      to: { type: "string" },
    },
    allowPositionals: true,
  });
  const top = Number(values.top);
  const window = {
    fromUs: values.from === undefined ? -Infinity : Number(values.from) * 1e6,
    toUs: values.to === undefined ? Infinity : Number(values.to) * 1e6,
  };
  for (const path of positionals) {
    const profile: Profile = JSON.parse(await Deno.readTextFile(path));
    // Percentages are of the busy time: idle is waiting, not work.
    const busyOnly = (keyOf: (node: ProfileNode) => string) => (node: ProfileNode) =>
      node.callFrame.functionName === "(idle)" ? "(idle)" : keyOf(node);
    const byFunction = selfTimes(
      profile,
      busyOnly((node) => {
        const frame = node.callFrame;
        return `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}:${
          frame.lineNumber + 1
        }`;
      }),
      window,
    );
    const idleMs = byFunction.get("(idle)") ?? 0;
    byFunction.delete("(idle)");
    const busyMs = [...byFunction.values()].reduce((sum, ms) => sum + ms, 0);
    console.log(`### ${path}\n\n${busyMs.toFixed(0)} ms busy, ${idleMs.toFixed(0)} ms idle\n`);
    console.log(table("function", byFunction, busyMs, top) + "\n");
    const byFile = selfTimes(profile, busyOnly((node) => shortUrl(node.callFrame.url)), window);
    byFile.delete("(idle)");
    console.log(table("file", byFile, busyMs, top) + "\n");
    const byPart = inclusiveTimes(profile, partOf, window);
    console.log(
      table("part (inclusive)", byPart, busyMs, top).replace("| self ms |", "| ms |") + "\n",
    );
  }
}
