import assert from "node:assert/strict";
import { BOOTSTRAP_MAX_AGE_SECONDS, entityTagOf, matchesIfNoneMatch } from "./conditional.ts";
import { startHttpServer } from "./http_server.ts";
import { NodeMetrics } from "./metrics.ts";

Deno.test("matchesIfNoneMatch() compares weakly, takes lists and *, and ignores huge headers", async () => {
  const tag = await entityTagOf("{}");
  assert.match(tag, /^"[0-9a-f]{32}"$/);
  assert.ok(matchesIfNoneMatch(tag, tag));
  assert.ok(matchesIfNoneMatch(`"other", W/${tag}`, tag));
  assert.ok(matchesIfNoneMatch("*", tag));
  assert.ok(!matchesIfNoneMatch(null, tag));
  assert.ok(!matchesIfNoneMatch('"other"', tag));
  assert.ok(!matchesIfNoneMatch(`${" ".repeat(2000)}${tag}`, tag));
});

Deno.test("GET /bootstrap sends ETag and max-age, and answers 304 to If-None-Match until the body changes", async () => {
  const metrics = new NodeMetrics({ defaultMetrics: false });
  let leaderId = 1;
  const server = await startHttpServer({
    hostname: "127.0.0.1",
    port: 0,
    metrics,
    routes: {
      bootstrap: () => ({ node_id: 1, leader_id: leaderId }),
      status: () => ({}),
      isServing: () => true,
    },
  });
  const url = `http://127.0.0.1:${server.port}/bootstrap`;
  try {
    const first = await fetch(url);
    const body = await first.text();
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(body), { node_id: 1, leader_id: 1 });
    const tag = first.headers.get("etag");
    assert.equal(tag, await entityTagOf(body));
    assert.equal(first.headers.get("cache-control"), `max-age=${BOOTSTRAP_MAX_AGE_SECONDS}`);

    const revalidated = await fetch(url, { headers: { "if-none-match": tag! } });
    assert.equal(revalidated.status, 304);
    assert.equal(await revalidated.text(), "");
    assert.equal(revalidated.headers.get("etag"), tag);

    leaderId = 2;
    const changed = await fetch(url, { headers: { "if-none-match": tag! } });
    assert.equal(changed.status, 200);
    assert.deepEqual(JSON.parse(await changed.text()), { node_id: 1, leader_id: 2 });
    assert.notEqual(changed.headers.get("etag"), tag);
    const rendered = (await metrics.render()).body;
    assert.match(rendered, /blixard_http_requests_total\{route="\/bootstrap",status="304"\} 1/);
  } finally {
    await server.shutdown();
  }
});
