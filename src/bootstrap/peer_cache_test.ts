import assert from "node:assert/strict";
import { SecretKey } from "../transport/iroh.ts";
import type { BootstrapInfo } from "./bootstrap_info.ts";
import { defaultPeerCachePath, PEER_CACHE_ENTRIES_MAX, PeerCache } from "./peer_cache.ts";

const INFO: BootstrapInfo = {
  node_id: 1,
  p2p_node_id: SecretKey.generate().public().toString(),
  p2p_addresses: ["127.0.0.1:7001"],
  p2p_relay_url: null,
  cluster_id: "c-1",
  leader_id: 1,
};

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `blixard-peer-cache-${Deno.pid}-` });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("defaultPeerCachePath() prefers XDG_CACHE_HOME, then ~/.cache, and needs absolute paths", () => {
  assert.equal(
    defaultPeerCachePath({ XDG_CACHE_HOME: "/x", HOME: "/home/a" }),
    "/x/blixard/peers.json",
  );
  assert.equal(defaultPeerCachePath({ HOME: "/home/a" }), "/home/a/.cache/blixard/peers.json");
  assert.equal(
    defaultPeerCachePath({ XDG_CACHE_HOME: "relative", HOME: "/h" }),
    "/h/.cache/blixard/peers.json",
  );
  assert.equal(defaultPeerCachePath({}), null);
});

Deno.test("PeerCache keeps identities across opens in a 0600 file in a 0700 directory", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/blixard/peers.json`;
    const cache = await PeerCache.open(path);
    assert.equal(cache.lookup("127.0.0.1:7001"), null);
    cache.remember("127.0.0.1:7001", INFO);
    await cache.save();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/blixard`)).mode! & 0o777, 0o700);
    const reopened = await PeerCache.open(path);
    assert.deepEqual(reopened.lookup("127.0.0.1:7001"), INFO);
    reopened.forget("127.0.0.1:7001");
    await reopened.save();
    assert.equal((await PeerCache.open(path)).lookup("127.0.0.1:7001"), null);
  });
});

Deno.test("PeerCache ignores a malformed file and drops invalid entries", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/peers.json`;
    await Deno.writeTextFile(path, "{ not json");
    assert.equal((await PeerCache.open(path)).size, 0);
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        version: 1,
        peers: {
          good: { info: INFO, verified_at: "2026-01-01T00:00:00Z" },
          bad: { info: { ...INFO, p2p_node_id: "nope" }, verified_at: "x" },
        },
      }),
    );
    const cache = await PeerCache.open(path);
    assert.equal(cache.size, 1);
    assert.deepEqual(cache.lookup("good"), INFO);
  });
});

Deno.test("PeerCache keeps at most PEER_CACHE_ENTRIES_MAX entries, dropping the oldest", async () => {
  await withTempDir(async (dir) => {
    const cache = await PeerCache.open(`${dir}/peers.json`);
    for (let index = 0; index <= PEER_CACHE_ENTRIES_MAX; index++) {
      cache.remember(`10.0.0.1:${7000 + index}`, INFO);
    }
    assert.equal(cache.size, PEER_CACHE_ENTRIES_MAX);
    assert.equal(cache.lookup("10.0.0.1:7000"), null);
    assert.notEqual(cache.lookup(`10.0.0.1:${7000 + PEER_CACHE_ENTRIES_MAX}`), null);
  });
});
