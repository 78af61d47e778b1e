/**
 * `cluster.backup_begin` on `blixard/rpc/1`: a member takes a consistent image (after a
 * ReadIndex barrier) and answers its position, its one-time id and the key its chunks are
 * sealed with; the caller then streams them from the member's HTTP port
 * (`backup_transfer.ts`). With a cluster secret, it passes the same gate as every other
 * method.
 *
 * @module
 */

import { z } from "../util/zod_mini.ts";
import { lazySchema } from "../util/lazy_schema.ts";
import { defineRpc } from "../transport/rpc.ts";
import { TRANSFER_KEY_BYTES } from "./backup_transfer.ts";

/** Smallest chunk size a caller may ask for (tests use small chunks to make many). */
export const BACKUP_CHUNK_BYTES_MIN = 1024;
/** Largest chunk size a caller may ask for. */
export const BACKUP_CHUNK_BYTES_MAX_REQUEST = 1024 * 1024;

const index = lazySchema(() => z.int().check(z.nonnegative()));

/** `cluster.backup_begin`: take a consistent image now; answers its position and id. */
export const BACKUP_BEGIN_RPC = defineRpc({
  method: "cluster.backup_begin",
  request: () =>
    z.strictObject({
      chunkBytes: z.int().check(
        z.minimum(BACKUP_CHUNK_BYTES_MIN),
        z.maximum(BACKUP_CHUNK_BYTES_MAX_REQUEST),
      ),
    }),
  response: () =>
    z.strictObject({
      backupId: z.string().check(z.minLength(1), z.maxLength(64)),
      clusterId: z.string().check(z.minLength(1), z.maxLength(128)),
      index,
      term: index,
      nodeId: z.int().check(z.minimum(1)),
      createdAt: z.string().check(z.maxLength(64)),
      stateSchemaVersion: z.int().check(z.minimum(1)),
      /** The AES-256-GCM key of the transfer. */
      key: z.custom<Uint8Array>(
        (value) => value instanceof Uint8Array && value.length === TRANSFER_KEY_BYTES,
        `expected a ${TRANSFER_KEY_BYTES}-byte key`,
      ),
    }),
});
