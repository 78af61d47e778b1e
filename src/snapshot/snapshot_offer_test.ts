import assert from "node:assert/strict";
import { encodeMessagePack } from "../state_machine/msgpack_codec.ts";
import {
  decodeSnapshotOffer,
  decodeStagedReference,
  encodeSnapshotOffer,
  encodeStagedReference,
} from "./snapshot_offer.ts";
import { snapshotHttpUrls, snapshotSettingsFromEnv } from "./snapshot_settings.ts";

const key = new Uint8Array(32).fill(7);

Deno.test("an offer round-trips, and data that is not a valid offer decodes to null", () => {
  const offer = { id: "image-1", key, urls: ["http://127.0.0.1:8001/"] };
  assert.deepEqual(decodeSnapshotOffer(encodeSnapshotOffer(offer)), offer);
  assert.equal(decodeStagedReference(encodeSnapshotOffer(offer)), null);
  assert.equal(decodeStagedReference(encodeStagedReference("image-1")), "image-1");
  const refused = [
    { ...offer, key: new Uint8Array(31) },
    { ...offer, urls: [] },
    { ...offer, urls: ["https://127.0.0.1:8001/"] },
    { ...offer, urls: ["http://user:pw@127.0.0.1:8001/"] },
    { ...offer, urls: ["http://127.0.0.1:8001/other"] },
    { ...offer, urls: Array(9).fill("http://127.0.0.1:8001/") },
  ];
  for (const bad of refused) assert.equal(decodeSnapshotOffer(encodeSnapshotOffer(bad)), null);
  assert.equal(decodeSnapshotOffer(new Uint8Array([0xc1])), null);
  // A state image (an array that starts with its format) is never taken for an offer.
  assert.equal(decodeSnapshotOffer(encodeMessagePack([2, 10, [1], [], "c", [], [], []])), null);
});

Deno.test("snapshotHttpUrls() uses the bound HTTP host, or the advertised hosts when it listens everywhere", () => {
  assert.deepEqual(snapshotHttpUrls({ host: "127.0.0.1", port: 8001 }, ["10.0.0.1:7001"]), [
    "http://127.0.0.1:8001/",
  ]);
  assert.deepEqual(
    snapshotHttpUrls({ host: "0.0.0.0", port: 8001 }, ["10.0.0.1:7001", "[fd00::1]:7001"]),
    ["http://10.0.0.1:8001/", "http://[fd00::1]:8001/"],
  );
});

Deno.test("snapshotSettingsFromEnv() reads the test knobs and refuses a bad value in one line naming it", () => {
  const env = (values: Record<string, string>) => (name: string) => values[name];
  assert.deepEqual(snapshotSettingsFromEnv(env({})), {});
  assert.deepEqual(
    snapshotSettingsFromEnv(env({
      BLIXARD_SNAPSHOT_CHUNK_BYTES: "4096",
      BLIXARD_SNAPSHOT_INTERVAL_ENTRIES: "200",
    })),
    { chunkBytes: 4096, intervalEntries: 200 },
  );
  for (const bad of ["12", "lots", "-5", "99999999"]) {
    assert.throws(
      () => snapshotSettingsFromEnv(env({ BLIXARD_SNAPSHOT_CHUNK_BYTES: bad })),
      (error: Error) =>
        error.message.includes(`BLIXARD_SNAPSHOT_CHUNK_BYTES="${bad}"`) &&
        !error.message.includes("\n"),
    );
  }
});
