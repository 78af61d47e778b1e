/**
 * Conditional answers for `/bootstrap` (RFC 9110 §8.8.3, §13.1.2; RFC 9111 §5.2.2.1): an
 * `ETag` over the exact body, `Cache-Control: max-age`, and `304 Not Modified` for a
 * request whose `If-None-Match` names the current tag, so that caches and scripts can
 * revalidate without the body. A node's identity rarely changes, but its `leader_id` and,
 * with a cluster secret, its signature may: the tag follows every byte of the body.
 *
 * @module
 */

/** How long an answer may be reused without asking again, in seconds. */
export const BOOTSTRAP_MAX_AGE_SECONDS = 60;
/** Longest `If-None-Match` header read; a longer one is ignored (the full body is sent). */
const IF_NONE_MATCH_CHARS_MAX = 1024;

const encoder = new TextEncoder();

/** The strong entity tag of `text`: the first 128 bits of its SHA-256, quoted. */
export async function entityTagOf(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return `"${digest.subarray(0, 16).toHex()}"`;
}

/** Whether `ifNoneMatch` (a header value, or `null`) names `entityTag` (weak comparison). */
export function matchesIfNoneMatch(ifNoneMatch: string | null, entityTag: string): boolean {
  if (ifNoneMatch === null || ifNoneMatch.length > IF_NONE_MATCH_CHARS_MAX) return false;
  if (ifNoneMatch.trim() === "*") return true;
  return ifNoneMatch.split(",").some((candidate) =>
    candidate.trim().replace(/^W\//, "") === entityTag
  );
}

/**
 * The answer to `request` with JSON `body`: 200 with the body, or 304 when the request's
 * `If-None-Match` names its tag; both carry `ETag` and `Cache-Control: max-age`.
 */
export async function conditionalJsonResponse(
  request: { headers: Headers },
  body: unknown,
): Promise<Response> {
  const text = JSON.stringify(body);
  if (text === undefined) throw new Error(`the body is not JSON: ${String(body)}`);
  const entityTag = await entityTagOf(text);
  const headers = {
    "content-type": "application/json",
    "cache-control": `max-age=${BOOTSTRAP_MAX_AGE_SECONDS}`,
    etag: entityTag,
  };
  if (matchesIfNoneMatch(request.headers.get("if-none-match"), entityTag)) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(text, { status: 200, headers });
}
