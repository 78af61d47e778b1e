import assert from "node:assert/strict";
import { z } from "zod";
import { SecretKey } from "../transport/iroh.ts";
import { defineRpc, RpcError, type RpcHandler } from "../transport/rpc.ts";
import { AUTHENTICATE_RPC, CHALLENGE_RPC } from "./auth_rpcs.ts";
import { ClusterSecret } from "./cluster_secret.ts";
import { computeProof, verifyServerProof } from "./secret_proof.ts";
import {
  AUTHENTICATION_TTL_MS,
  CHALLENGE_TTL_MS,
  CHALLENGES_PER_KEY,
  CHALLENGES_PER_SOURCE,
  type RpcRegistrar,
  SecretGate,
  type SecretGateLimits,
} from "./secret_gate.ts";

const encoder = new TextEncoder();
const SECRET = await ClusterSecret.fromBytes(encoder.encode("the cluster secret of the test"));
const OTHER_SECRET = await ClusterSecret.fromBytes(
  encoder.encode("another secret, also 30 bytes!"),
);

const ECHO_RPC = defineRpc({
  method: "test.echo",
  request: () => z.strictObject({ text: z.string() }),
  response: () => z.strictObject({ text: z.string() }),
});

function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

function newKey(): string {
  return SecretKey.generate().public().toString();
}

/**
 * A gate on a fake server: the handlers are called directly, as the RPC server would call
 * them after validating the request, with the caller's key as the context.
 */
function gateHarness(
  options: { members?: string[]; revoked?: Set<string>; limits?: Partial<SecretGateLimits> } = {},
) {
  const clock = { nowMs: 0 };
  const serverKey = newKey();
  const handlers = new Map<string, RpcHandler<never>>();
  const server = {
    register: (definition: { method: string }, handler: RpcHandler<never>) => {
      handlers.set(definition.method, handler);
    },
  } as unknown as RpcRegistrar;
  const gate = new SecretGate({
    secret: SECRET,
    selfP2pNodeId: serverKey,
    isMember: (key) => options.members?.includes(key) ?? false,
    isRevoked: (key) => options.revoked?.has(key) ?? false,
    now: () => clock.nowMs,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  gate.register(server);
  let echoes = 0;
  gate.guard(server).register(ECHO_RPC, (request) => {
    echoes++;
    return { text: request.text };
  });
  /** Callers' source addresses other than 127.0.0.1. */
  const addressOf = new Map<string, string>();
  const call = async (method: string, caller: string, request: unknown): Promise<unknown> => {
    const handler = handlers.get(method) as unknown as (
      request: unknown,
      context: { remoteNodeId: string; remoteAddress: string | null; signal: AbortSignal },
    ) => unknown;
    return await handler(request, {
      remoteNodeId: caller,
      remoteAddress: addressOf.get(caller) ?? "127.0.0.1:40000",
      signal: new AbortController().signal,
    });
  };
  const challenge = async (caller: string) =>
    (await call(CHALLENGE_RPC.method, caller, { nonce: newNonce() }) as {
      challenge: Uint8Array;
    }).challenge;
  const answer = async (
    caller: string,
    challenge: Uint8Array,
    proofOptions: { secret?: ClusterSecret; callerKey?: string; serverKey?: string } = {},
  ) => {
    const proof = await computeProof(proofOptions.secret ?? SECRET, {
      challenge,
      callerP2pNodeId: proofOptions.callerKey ?? caller,
      serverP2pNodeId: proofOptions.serverKey ?? serverKey,
    });
    return await call(AUTHENTICATE_RPC.method, caller, { challenge, proof });
  };
  const echo = (caller: string) => call(ECHO_RPC.method, caller, { text: "hi" });
  return {
    clock,
    gate,
    addressOf,
    call,
    serverKey,
    challenge,
    answer,
    echo,
    echoes: () => echoes,
    authenticate: async (caller: string) => await answer(caller, await challenge(caller)),
  };
}

function isRpcError(code: string, message?: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof RpcError && error.code === code &&
    (message === undefined || message.test(error.message));
}

Deno.test("SecretGate refuses a caller that is neither member nor authenticated before the method runs", async () => {
  const harness = gateHarness();
  await assert.rejects(
    harness.echo(newKey()),
    isRpcError(
      "unauthenticated",
      /^this cluster requires the cluster secret: pass --cluster-secret-file/,
    ),
  );
  assert.equal(harness.echoes(), 0);
});

Deno.test("SecretGate admits members without a proof", async () => {
  const member = newKey();
  const harness = gateHarness({ members: [member] });
  assert.deepStrictEqual(await harness.echo(member), { text: "hi" });
  assert.equal(harness.gate.admits(member), true);
});

Deno.test("SecretGate admits a caller that answered its challenge with the right proof", async () => {
  const harness = gateHarness();
  const caller = newKey();
  assert.deepStrictEqual(await harness.authenticate(caller), {
    validForMs: AUTHENTICATION_TTL_MS,
  });
  assert.deepStrictEqual(await harness.echo(caller), { text: "hi" });
  assert.equal(harness.gate.admits(newKey()), false, "only that key");
});

Deno.test("SecretGate refuses a proof of another secret, or bound to another server or caller key", async () => {
  const harness = gateHarness();
  const caller = newKey();
  const wrongProofs = [
    { secret: OTHER_SECRET },
    { serverKey: newKey() },
    { callerKey: newKey() },
  ];
  for (const wrong of wrongProofs) {
    await assert.rejects(
      harness.answer(caller, await harness.challenge(caller), wrong),
      isRpcError("secret_refused", /^the proof does not match this cluster's secret/),
      JSON.stringify(Object.keys(wrong)),
    );
    assert.equal(harness.gate.admits(caller), false);
  }
});

Deno.test("SecretGate takes each challenge once: a replayed or a wrong answer burns it", async () => {
  const harness = gateHarness();
  const caller = newKey();
  const challenge = await harness.challenge(caller);
  await harness.answer(caller, challenge);
  await assert.rejects(harness.answer(caller, challenge), isRpcError("challenge_expired"));
  const burnt = await harness.challenge(caller);
  await assert.rejects(
    harness.answer(caller, burnt, { secret: OTHER_SECRET }),
    isRpcError("secret_refused"),
  );
  await assert.rejects(harness.answer(caller, burnt), isRpcError("challenge_expired"));
});

Deno.test("SecretGate answers a challenge only from the key it was issued to, and only the latest", async () => {
  const harness = gateHarness();
  const caller = newKey();
  const thief = newKey();
  const challenge = await harness.challenge(caller);
  // The thief proves the secret correctly for itself, but the challenge is not its own.
  await assert.rejects(harness.answer(thief, challenge), isRpcError("challenge_expired"));
  const newer = await harness.challenge(caller);
  await assert.rejects(harness.answer(caller, challenge), isRpcError("challenge_expired"));
  await assert.rejects(
    harness.answer(caller, newer),
    isRpcError("challenge_expired"),
    "burnt by the stale answer",
  );
  await harness.authenticate(caller);
  assert.equal(harness.gate.admits(caller), true);
});

Deno.test("SecretGate lets a challenge expire after CHALLENGE_TTL_MS", async () => {
  const harness = gateHarness();
  const caller = newKey();
  const challenge = await harness.challenge(caller);
  harness.clock.nowMs += CHALLENGE_TTL_MS;
  await assert.rejects(harness.answer(caller, challenge), isRpcError("challenge_expired"));
});

Deno.test("SecretGate forgets an authentication after its time to live", async () => {
  const harness = gateHarness();
  const caller = newKey();
  await harness.authenticate(caller);
  harness.clock.nowMs += AUTHENTICATION_TTL_MS - 1;
  assert.equal(harness.gate.admits(caller), true);
  harness.clock.nowMs += 1;
  await assert.rejects(harness.echo(caller), isRpcError("unauthenticated"));
});

Deno.test("SecretGate rate-limits challenges per source address: a burst, then overloaded until the bucket refills", async () => {
  const harness = gateHarness();
  for (let i = 0; i < CHALLENGES_PER_SOURCE.burst; i++) await harness.challenge(newKey());
  await assert.rejects(harness.challenge(newKey()), isRpcError("overloaded", /retry in \d+ ms/));
  harness.clock.nowMs += 1_000;
  await harness.challenge(newKey());
});

Deno.test("SecretGate rate-limits challenges per key, whatever the address", async () => {
  const harness = gateHarness();
  const caller = newKey();
  for (let i = 0; i < CHALLENGES_PER_KEY.burst; i++) await harness.challenge(caller);
  await assert.rejects(harness.challenge(caller), isRpcError("overloaded"));
  await harness.challenge(newKey());
});

Deno.test("SecretGate: a source flooding challenges from many keys does not lock out another source", async () => {
  const harness = gateHarness();
  const strangers = Array.from({ length: 200 }, () => newKey());
  let refused = 0;
  for (const stranger of strangers) {
    harness.addressOf.set(stranger, "127.0.0.2:5000");
    await harness.challenge(stranger).catch(() => refused++);
  }
  assert.equal(refused, strangers.length - CHALLENGES_PER_SOURCE.burst);
  const operator = newKey();
  await harness.authenticate(operator);
  assert.equal(harness.gate.admits(operator), true);
});

Deno.test("SecretGate bounds outstanding challenges and authenticated keys, the oldest giving way", async () => {
  const harness = gateHarness({
    limits: { challengesOutstandingMax: 2, authenticatedKeysMax: 2 },
  });
  const [first, second, third] = [newKey(), newKey(), newKey()];
  const firstChallenge = await harness.challenge(first);
  const secondChallenge = await harness.challenge(second);
  await harness.challenge(third);
  await assert.rejects(harness.answer(first, firstChallenge), isRpcError("challenge_expired"));
  await harness.answer(second, secondChallenge);
  await harness.authenticate(first);
  await harness.authenticate(third);
  assert.deepStrictEqual([first, second, third].map((key) => harness.gate.admits(key)), [
    true,
    false,
    true,
  ]);
});

Deno.test("SecretGate refuses a revoked key at once, even authenticated or a member, and will not authenticate it again", async () => {
  const removed = newKey();
  const revoked = new Set<string>();
  const harness = gateHarness({ members: [removed], revoked });
  await harness.authenticate(removed);
  assert.deepEqual(await harness.echo(removed), { text: "hi" });
  const challenge = await harness.challenge(removed);
  revoked.add(removed);
  assert.equal(harness.gate.admits(removed), false);
  await assert.rejects(
    harness.echo(removed),
    isRpcError("revoked", /^this P2P key belongs to a member that was removed/),
  );
  await assert.rejects(harness.answer(removed, challenge), isRpcError("revoked"));
  await assert.rejects(harness.challenge(removed), isRpcError("revoked"));
  assert.equal(harness.echoes(), 1);
  const other = newKey();
  await harness.authenticate(other);
  assert.deepEqual(await harness.echo(other), { text: "hi" }, "other keys are unaffected");
});

Deno.test("SecretGate proves the secret to the caller over the caller's nonce, bound to both keys", async () => {
  const harness = gateHarness();
  const caller = newKey();
  const nonce = newNonce();
  const answer = await harness.call(CHALLENGE_RPC.method, caller, { nonce }) as {
    serverProof: Uint8Array;
  };
  const binding = { nonce, callerP2pNodeId: caller, serverP2pNodeId: harness.serverKey };
  assert.equal(await verifyServerProof(SECRET, { ...binding, proof: answer.serverProof }), true);
  assert.equal(
    await verifyServerProof(OTHER_SECRET, { ...binding, proof: answer.serverProof }),
    false,
  );
  assert.equal(
    await verifyServerProof(SECRET, { ...binding, nonce: newNonce(), proof: answer.serverProof }),
    false,
    "bound to the nonce",
  );
  assert.equal(
    await verifyServerProof(SECRET, {
      ...binding,
      callerP2pNodeId: newKey(),
      proof: answer.serverProof,
    }),
    false,
    "bound to the caller's key",
  );
});
