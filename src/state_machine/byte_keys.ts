/**
 * Byte-string keys: ordering and prefix ranges. Keys are compared as unsigned bytes,
 * shorter first on a common prefix, which is SQLite's BLOB order and etcd's.
 *
 * @module
 */

/** Negative, zero or positive as `a` sorts before, with or after `b`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/** True when `key` starts with `prefix`. */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i += 1) {
    if (key[i] !== prefix[i]) return false;
  }
  return true;
}

/**
 * The smallest key greater than every key that starts with `prefix`, or `null` when there
 * is none (the prefix is empty or all 0xff bytes): keys with the prefix are exactly
 * `prefix <= key < prefixEnd(prefix)`.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  let end = prefix.length;
  // Trailing 0xff bytes cannot be incremented: drop them and carry into the byte before.
  while (end > 0 && prefix[end - 1] === 0xff) end -= 1;
  if (end === 0) return null;
  const result = prefix.slice(0, end);
  result[end - 1]! += 1;
  return result;
}

/** The smallest key greater than `key`: `key` followed by a zero byte. */
export function keySuccessor(key: Uint8Array): Uint8Array {
  const result = new Uint8Array(key.length + 1);
  result.set(key);
  return result;
}

/** Two bytes equal in length and content. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}
