import assert from "node:assert/strict";
import { configureLogging, resetLogging } from "../log/logging.ts";
import { bindLoopbackEndpoint } from "../transport/testing.ts";
import {
  fetchBootstrapInfo,
  findSeed,
  isConnectionRefused,
  pauseAfterRound,
  REFUSED_BACKOFF_MAX_MS,
} from "./bootstrap_client.ts";
import { BootstrapError } from "./bootstrap_error.ts";

/** A `/bootstrap` URL on a TCP port where nothing listens. */
function closedPortUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return `http://127.0.0.1:${listener.addr.port}/bootstrap`;
}

/** The failure a real fetch of `/bootstrap` from a TCP port where nothing listens gives. */
async function refusedFailure(): Promise<BootstrapError> {
  const url = closedPortUrl();
  const error = await fetchBootstrapInfo({ peer: "starting", url }, { timeoutMs: 10_000 }).then(
    () => assert.fail("nothing listens there"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof BootstrapError);
  return error;
}

const LONG_BACKOFF = { backoffInitialMs: 200, backoffMaxMs: 5_000, random: () => 0.5 };

Deno.test("isConnectionRefused() recognises a refused connect, and nothing else that failed", async () => {
  assert.ok(isConnectionRefused(await refusedFailure()));
  const others = [
    new BootstrapError("a", "timeout", "/bootstrap: no answer within 100 ms"),
    new BootstrapError("b", "http_status", "/bootstrap: HTTP status 503"),
    new BootstrapError("c", "unreachable", "/bootstrap: No route to host (os error 113)"),
    // A peer named like the message does not make its failure a refusal.
    new BootstrapError("connection refused", "unreachable", "/bootstrap: timed out"),
  ];
  for (const failure of others) assert.equal(isConnectionRefused(failure), false, failure.message);
});

Deno.test("pauseAfterRound() caps the backoff while every attempt of the round was refused", async () => {
  const refused = await refusedFailure();
  const late = 6; // a round whose backoff has grown far past the cap
  assert.ok(pauseAfterRound(late, [], LONG_BACKOFF) > REFUSED_BACKOFF_MAX_MS);
  assert.ok(pauseAfterRound(late, [refused, refused], LONG_BACKOFF) <= REFUSED_BACKOFF_MAX_MS);
  // One peer that answered something else keeps the whole backoff: it is up and failing.
  const mixed = [refused, new BootstrapError("b", "http_status", "/bootstrap: HTTP status 503")];
  assert.equal(pauseAfterRound(late, mixed, LONG_BACKOFF), pauseAfterRound(late, [], LONG_BACKOFF));
  // Below the cap, the backoff stands as it is.
  const short = { ...LONG_BACKOFF, backoffInitialMs: 10 };
  assert.equal(pauseAfterRound(0, [refused], short), pauseAfterRound(0, [], short));
});

Deno.test("findSeed() asks a peer that refuses connections again soon, however long its backoff, warning once", async () => {
  const endpoint = await bindLoopbackEndpoint();
  const enough = new AbortController();
  let refusals = 0;
  const warnings: string[] = [];
  await configureLogging({
    level: "warning",
    format: "text",
    write: (line) => warnings.push(line),
  });
  try {
    // Without the cap the first pause (30–60 s) would pass the join timeout: one round only.
    await assert.rejects(
      findSeed([closedPortUrl()], {
        endpoint,
        joinTimeoutMs: 20_000,
        backoffInitialMs: 60_000,
        backoffMaxMs: 60_000,
        signal: enough.signal,
        onEvent: () => {
          if (++refusals === 3) enough.abort(new Error("three refusals seen"));
        },
      }),
      /three refusals seen/,
    );
    assert.equal(warnings.filter((line) => /Connection refused/i.test(line)).length, 1);
  } finally {
    await resetLogging();
    await endpoint.close();
  }
});
