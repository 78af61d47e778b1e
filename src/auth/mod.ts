/**
 * Cluster secrets (DESIGN.md section 8): loading the secret (`cluster_secret.ts`), the
 * proof a caller gives over a P2P connection in answer to a fresh challenge
 * (`secret_proof.ts`, `auth_rpcs.ts`), the node's gate that issues challenges and refuses
 * callers that are neither members nor authenticated (`secret_gate.ts`) and proves the
 * secret back to the caller, the caller's side that checks that proof and authenticates
 * (`authenticate.ts`), and signatures with an issue time and a validity window for what a
 * node publishes in the open (`timed_signature.ts`). The `/bootstrap` signature lives with
 * `BootstrapInfo` in `src/bootstrap/bootstrap_signature.ts`.
 *
 * @module
 */

export * from "./auth_rpcs.ts";
export * from "./authenticate.ts";
export * from "./cluster_secret.ts";
export * from "./expiring_map.ts";
export * from "./secret_gate.ts";
export * from "./secret_proof.ts";
export * from "./timed_signature.ts";
