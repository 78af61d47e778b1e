/**
 * The backup methods of `blixard/rpc/1`. A backup is a session on one member: `begin`
 * takes the image (after a ReadIndex barrier) and names it; `next` hands out its chunks
 * one by one, in order, so that no frame exceeds the RPC limit and the member holds one
 * chunk at a time. With a cluster secret, both pass the same gate as every other method.
 *
 * @module
 */

import { z } from "zod";
import { defineRpc, RPC_FRAME_BYTES_MAX } from "../transport/rpc.ts";

/** Smallest chunk size a caller may ask for (tests use small chunks to make many). */
export const BACKUP_CHUNK_BYTES_MIN = 1024;
/** Largest chunk size: a chunk and its framing stay well below the 1 MiB RPC frame. */
export const BACKUP_CHUNK_BYTES_MAX_RPC = 512 * 1024;

const index = z.number().int().nonnegative();

/** `cluster.backup_begin`: take a consistent image now; answers its position and id. */
export const BACKUP_BEGIN_RPC = defineRpc({
  method: "cluster.backup_begin",
  request: z.strictObject({
    chunkBytes: z.number().int().min(BACKUP_CHUNK_BYTES_MIN).max(BACKUP_CHUNK_BYTES_MAX_RPC),
  }),
  response: z.strictObject({
    backupId: z.string().min(1).max(64),
    clusterId: z.string().min(1).max(128),
    index,
    term: index,
    nodeId: z.number().int().min(1),
    createdAt: z.string().max(64),
    stateSchemaVersion: z.number().int().min(1),
  }),
});

/** `cluster.backup_next`: chunk number `sequence` (from 1) of a backup, or `null` after the last. */
export const BACKUP_NEXT_RPC = defineRpc({
  method: "cluster.backup_next",
  request: z.strictObject({
    backupId: z.string().min(1).max(64),
    sequence: z.number().int().min(1),
  }),
  response: z.strictObject({
    chunk: z.custom<Uint8Array>(
      (value) => value instanceof Uint8Array && value.length <= RPC_FRAME_BYTES_MAX - 4096,
      "expected a chunk of binary data",
    ).nullable(),
  }),
});
