/**
 * The top of a V8 CPU profile (`deno run --cpu-prof`, or `deno task bench --cpu-prof DIR`):
 * the functions with the most self time, and self time by source file, as Markdown tables.
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

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
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
  let atUs = profile.startTime;
  profile.samples.forEach((id, i) => {
    const deltaUs = profile.timeDeltas[i] ?? 0;
    atUs += deltaUs;
    if (atUs < window.fromUs || atUs > window.toUs) return;
    const key = keyOf(byId.get(id)!);
    times.set(key, (times.get(key) ?? 0) + deltaUs / 1000);
  });
  return times;
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
  }
}
