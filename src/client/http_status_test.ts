import assert from "node:assert/strict";
import { fetchStatus } from "./http_status.ts";

Deno.test("fetchStatus() returns the /status document, and null for an error answer or no server", async () => {
  let healthy = true;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    if (new URL(request.url).pathname !== "/status") return new Response("no", { status: 404 });
    return healthy
      ? Response.json({ node_id: 4, role: "leader" })
      : new Response("down", { status: 503 });
  });
  try {
    const port = server.addr.port;
    assert.deepEqual(await fetchStatus(port), { node_id: 4, role: "leader" });
    healthy = false;
    assert.equal(await fetchStatus(port), null);
  } finally {
    await server.shutdown();
  }
  assert.equal(await fetchStatus(server.addr.port), null, "nothing listens any more");
});
