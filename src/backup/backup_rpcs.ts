/**
 * `cluster.backup_begin` on `blixard/rpc/1`: a member takes a consistent image (after a
 * ReadIndex barrier) and answers its position, its one-time id and the key its chunks are
 * sealed with; the caller then streams them from the member's HTTP port
 * (`backup_transfer.ts`). With a cluster secret, it passes the same gate as every other
 * method.
 *
 * @module
 */

import { z } from "zod";
import { lazySchema } from "../util/lazy_schema.ts";
import { defineRpc } from "../transport/rpc.ts";
import { TRANSFER_KEY_BYTES } from "./backup_transfer.ts";

/** Smallest chunk size a caller may ask for (tests use small chunks to make many). */
export const BACKUP_CHUNK_BYTES_MIN = 1024;
/** Largest chunk size a caller may ask for. */
export const BACKUP_CHUNK_BYTES_MAX_REQUEST = 1024 * 1024;

const index = lazySchema(() => z.number().int().nonnegative());

/** `cluster.backup_begin`: take a consistent image now; answers its position and id. */
export const BACKUP_BEGIN_RPC = defineRpc({
  method: "cluster.backup_begin",
  request: () =>
    z.strictObject({
      chunkBytes: z.number().int().min(BACKUP_CHUNK_BYTES_MIN).max(BACKUP_CHUNK_BYTES_MAX_REQUEST),
    }),
  response: () =>
    z.strictObject({
      backupId: z.string().min(1).max(64),
      clusterId: z.string().min(1).max(128),
      index,
      term: index,
      nodeId: z.number().int().min(1),
      createdAt: z.string().max(64),
      stateSchemaVersion: z.number().int().min(1),
      /** The AES-256-GCM key of the transfer. */
      key: z.custom<Uint8Array>(
        (value) => value instanceof Uint8Array && value.length === TRANSFER_KEY_BYTES,
        `expected a ${TRANSFER_KEY_BYTES}-byte key`,
      ),
    }),
});
