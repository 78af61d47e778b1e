// Run after `npm install` changes package-lock.json: `node scripts/repair_lockfile.mjs`.
//
// @number0/iroh lists optional platform packages that were never published (android, arm,
// windows). `npm install` leaves them out of package-lock.json, and `npm ci` then refuses
// the lock file as out of sync. This adds a lock entry for each missing one with its
// platform (os/cpu/libc), so that `npm ci` skips it on every other platform instead of
// failing. On the platform itself the package still does not exist: there is no Iroh
// build for it.
import { readFileSync, writeFileSync } from "node:fs";

const LOCK_PATH = new URL("../package-lock.json", import.meta.url);
const PLATFORMS = {
  "android-arm-eabi": { os: ["android"], cpu: ["arm"] },
  "android-arm64": { os: ["android"], cpu: ["arm64"] },
  "darwin-arm64": { os: ["darwin"], cpu: ["arm64"] },
  "linux-arm-gnueabihf": { os: ["linux"], cpu: ["arm"], libc: ["glibc"] },
  "linux-arm-musleabihf": { os: ["linux"], cpu: ["arm"], libc: ["musl"] },
  "linux-arm64-gnu": { os: ["linux"], cpu: ["arm64"], libc: ["glibc"] },
  "linux-arm64-musl": { os: ["linux"], cpu: ["arm64"], libc: ["musl"] },
  "linux-x64-gnu": { os: ["linux"], cpu: ["x64"], libc: ["glibc"] },
  "linux-x64-musl": { os: ["linux"], cpu: ["x64"], libc: ["musl"] },
  "win32-arm64-msvc": { os: ["win32"], cpu: ["arm64"] },
  "win32-x64-msvc": { os: ["win32"], cpu: ["x64"] },
};

const lock = JSON.parse(readFileSync(LOCK_PATH, "utf8"));
const iroh = lock.packages["node_modules/@number0/iroh"];
if (iroh === undefined) {
  throw new Error("package-lock.json has no @number0/iroh: run npm install first");
}
let added = 0;
for (const name of Object.keys(iroh.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key] !== undefined) continue;
  const platform = PLATFORMS[name.replace("@number0/iroh-", "")];
  if (platform === undefined) throw new Error(`${name}: unknown platform, add it to PLATFORMS`);
  lock.packages[key] = { version: iroh.optionalDependencies[name], optional: true, ...platform };
  added++;
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => a.localeCompare(b)),
);
writeFileSync(LOCK_PATH, JSON.stringify(lock, null, 2) + "\n");
console.log(
  `package-lock.json: added ${added} placeholder entries for unpublished Iroh platform packages`,
);
