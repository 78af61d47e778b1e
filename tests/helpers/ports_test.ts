import assert from "node:assert/strict";
import { CLAIM_TTL_MS, claimPort, CLAIMS_DIR, freeBindPort } from "./ports.ts";

// Above every range the suite draws from (bind ports stay at most 64535), so that no real draw
// meets these claims.
const PORT = 65_001 + Math.floor(Math.random() * 500);

Deno.test("claimPort(): a port claimed by one module is refused to every other while the claim is live, and a claim older than CLAIM_TTL_MS is taken over", () => {
  const path = `${CLAIMS_DIR}/${PORT}`;
  try {
    assert.equal(claimPort(PORT), true);
    // What another test module, or another run on the machine, finds: the same file.
    assert.equal(claimPort(PORT), false);
    const stale = new Date(Date.now() - CLAIM_TTL_MS - 60_000);
    Deno.utimeSync(path, stale, stale);
    assert.equal(claimPort(PORT), true, "a stale claim is taken over");
    assert.ok(Deno.statSync(path).mtime!.getTime() > stale.getTime(), "and renewed");
    assert.equal(claimPort(PORT), false);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("freeBindPort() hands out only ports it claimed", async () => {
  const port = await freeBindPort();
  assert.equal(claimPort(port), false, `port ${port} is claimed`);
});
