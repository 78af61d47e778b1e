/**
 * What a streamed snapshot puts in the `data` of an `InstallSnapshot`, instead of the
 * state image itself (`docs/decisions.md`, "Streaming snapshots"):
 *
 * - on the wire, an **offer**: the one-time id of the image the leader opened, the key its
 *   chunks are sealed with, and the leader's HTTP URLs to fetch them from. It travels on
 *   the Raft link, which only members reach, over the encrypted Iroh connection.
 * - on the receiver only, a **staged reference**: the id of an image received whole and
 *   verified into the staging tables, which the Ready loop installs. It never comes from
 *   the network: the receiver drops any message that carries one.
 *
 * Both are small MessagePack arrays with a tag first; a state image (whole-image snapshots,
 * the in-process tests') is an array starting with its format number, so they never mix.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { TRANSFER_KEY_BYTES } from "../backup/backup_transfer.ts";
import { decodeMessagePack, encodeMessagePack } from "../state_machine/msgpack_codec.ts";

const OFFER_TAG = "blixard-snapshot-offer/1";
const STAGED_TAG = "blixard-snapshot-staged/1";
/** Larger data is a state image: it is not even decoded to look for a tag. */
const TAGGED_BYTES_MAX = 4096;
/** URLs an offer may list. */
export const OFFER_URLS_MAX = 8;

/** A leader's offer of an image. */
export interface SnapshotOffer {
  /** The one-time id of the image (`GET /backup?id=…`). */
  id: string;
  /** Its AES-256-GCM transfer key. */
  key: Uint8Array;
  /** Where to fetch it: `http://host:port` of the leader's HTTP server, in order. */
  urls: string[];
}

const id = lazySchema(() => z.string().check(z.minLength(1), z.maxLength(64)));
const httpUrl = lazySchema(() =>
  z.string().check(
    z.maxLength(256),
    z.refine((text) => {
      try {
        const url = new URL(text);
        return url.protocol === "http:" && url.username === "" && url.password === "" &&
          url.pathname === "/" && url.search === "" && url.hash === "";
      } catch {
        return false;
      }
    }, "an http://host:port URL"),
  )
);
const offerSchema = lazySchema(() =>
  z.tuple([
    z.literal(OFFER_TAG),
    id,
    z.custom<Uint8Array>((value) =>
      value instanceof Uint8Array && value.length === TRANSFER_KEY_BYTES
    ),
    z.array(httpUrl).check(z.minLength(1), z.maxLength(OFFER_URLS_MAX)),
  ])
);
const stagedSchema = lazySchema(() => z.tuple([z.literal(STAGED_TAG), id]));

/** The `data` of an offer. */
export function encodeSnapshotOffer(offer: SnapshotOffer): Uint8Array {
  return encodeMessagePack([OFFER_TAG, offer.id, offer.key, offer.urls]);
}

/** The offer in `data`, or `null` when `data` is not a valid offer. */
export function decodeSnapshotOffer(data: Uint8Array): SnapshotOffer | null {
  const parsed = offerSchema.safeParse(decodeSmall(data));
  if (!parsed.success) return null;
  const [, offerId, key, urls] = parsed.data;
  return { id: offerId, key: new Uint8Array(key), urls };
}

/** The `data` of a staged reference to image `imageId`. */
export function encodeStagedReference(imageId: string): Uint8Array {
  return encodeMessagePack([STAGED_TAG, imageId]);
}

/** The image id of a staged reference, or `null` when `data` is not one. */
export function decodeStagedReference(data: Uint8Array): string | null {
  const parsed = stagedSchema.safeParse(decodeSmall(data));
  return parsed.success ? parsed.data[1] : null;
}

function decodeSmall(data: Uint8Array): unknown {
  if (data.length > TAGGED_BYTES_MAX) return null;
  try {
    return decodeMessagePack(data);
  } catch {
    return null;
  }
}
