import assert from "node:assert/strict";
import type { BlixardClient } from "../../src/client/client.ts";
import { lostWrites } from "./writer.ts";

const encoder = new TextEncoder();

/** A client whose `list` and `get` answer from maps, failing the first `getFailures` gets. */
function fakeClient(
  listed: Record<string, string>,
  stored: Record<string, string>,
  getFailures = 0,
): { client: BlixardClient; gets: string[] } {
  const gets: string[] = [];
  let failuresLeft = getFailures;
  const client = {
    list: (prefix: string) =>
      Promise.resolve(
        Object.entries(listed).filter(([key]) => key.startsWith(prefix)).map(([key, value]) => ({
          key: encoder.encode(key),
          value: encoder.encode(value),
        })),
      ),
    get: (key: string) => {
      gets.push(key);
      if (failuresLeft-- > 0) return Promise.reject(new Error("no leader"));
      const value = stored[key];
      return Promise.resolve(value === undefined ? null : encoder.encode(value));
    },
  };
  return { client: client as unknown as BlixardClient, gets };
}

Deno.test("lostWrites() with a prefix reads on their own only the keys the list shows missing or different, and reports those still wrong", async () => {
  const acknowledged = new Map([["w/1", "a"], ["w/2", "b"], ["w/3", "c"], ["w/4", "d"]]);
  const { client, gets } = fakeClient(
    { "w/1": "a", "w/3": "stale", "w/4": "d" },
    { "w/1": "a", "w/2": "b", "w/3": "stale", "w/4": "d" },
  );
  const wrong = await lostWrites(client, acknowledged, { prefix: "w/" });
  assert.deepEqual(gets, ["w/2", "w/3"]);
  assert.deepEqual(wrong, ["w/3: expected c, read stale"]);
});

Deno.test("lostWrites() without a prefix reads every key, and reports a missing one as read null", async () => {
  const { client, gets } = fakeClient({}, { "w/1": "a" });
  const wrong = await lostWrites(client, new Map([["w/1", "a"], ["w/2", "b"]]));
  assert.deepEqual(gets, ["w/1", "w/2"]);
  assert.deepEqual(wrong, ["w/2: expected b, read null"]);
});

Deno.test("lostWrites() asks a failed read again within retryForMs, and without it throws the read's error", async () => {
  const acknowledged = new Map([["w/1", "a"]]);
  const retried = fakeClient({}, { "w/1": "a" }, 2);
  assert.deepEqual(await lostWrites(retried.client, acknowledged, { retryForMs: 60_000 }), []);
  assert.equal(retried.gets.length, 3);
  const once = fakeClient({}, { "w/1": "a" }, 1);
  await assert.rejects(() => lostWrites(once.client, acknowledged), /no leader/);
});
