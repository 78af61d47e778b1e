import { deepStrictEqual, throws } from "node:assert/strict";
import { MemoryStateStore } from "./memory_state_store.ts";
import { encodeMessagePack } from "./msgpack_codec.ts";
import {
  decodeStateImage,
  encodeStateImage,
  STATE_IMAGE_FORMAT,
  StateImageError,
} from "./state_image.ts";

/** The fields every image format has, of an empty state at index 5 with voter 1. */
const COMMON_FIELDS = [5, [1], [], "cluster-a", [], [], []];

Deno.test("decodeStateImage() reads a format 1 image (before revoked keys) as one with none", () => {
  const image = decodeStateImage(encodeMessagePack([1, ...COMMON_FIELDS]));
  deepStrictEqual(image.revokedKeys, []);
  deepStrictEqual(image.confState, { voters: [1], learners: [] });
});

Deno.test("decodeStateImage() refuses a format that does not match its fields", () => {
  throws(
    () => decodeStateImage(encodeMessagePack([STATE_IMAGE_FORMAT, ...COMMON_FIELDS])),
    StateImageError,
  );
  throws(
    () => decodeStateImage(encodeMessagePack([1, ...COMMON_FIELDS, [["p2p-2", 4]]])),
    StateImageError,
  );
});

Deno.test("encodeStateImage() carries the revoked keys, oldest first", () => {
  const store = new MemoryStateStore();
  store.revokeKey({ p2pNodeId: "p2p-3", index: 9 });
  store.revokeKey({ p2pNodeId: "p2p-2", index: 4 });
  deepStrictEqual(decodeStateImage(encodeStateImage(store)).revokedKeys, [
    { p2pNodeId: "p2p-2", index: 4 },
    { p2pNodeId: "p2p-3", index: 9 },
  ]);
});

Deno.test("decodeStateImage() reads a format 3 image (before invited learners) as one with none", () => {
  const image = decodeStateImage(encodeMessagePack([3, ...COMMON_FIELDS, [], []]));
  deepStrictEqual(image.invitedLearners, []);
  deepStrictEqual(image.invites, []);
  throws(() => decodeStateImage(encodeMessagePack([3, ...COMMON_FIELDS, [], [], [2]])));
});

Deno.test("encodeStateImage() carries the members invited as learners", () => {
  const store = new MemoryStateStore();
  store.addInvitedLearner(7);
  store.addInvitedLearner(3);
  deepStrictEqual(decodeStateImage(encodeStateImage(store)).invitedLearners, [3, 7]);
});
