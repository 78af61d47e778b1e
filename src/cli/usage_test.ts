import assert from "node:assert/strict";
import { CLUSTER_SECRET_VARIABLE } from "../auth/cluster_secret.ts";
import { VERSION } from "../version.ts";
import {
  environmentVariableFor,
  LEGACY_MDNS_VARIABLE,
  NODE_FLAGS,
  P2P_ENABLED_VARIABLE,
} from "./node_config.ts";
import { MAIN_USAGE, NODE_USAGE } from "./usage.ts";

Deno.test("NODE_USAGE describes every flag of parseNodeConfig() and its variable", () => {
  for (const flag of NODE_FLAGS) {
    assert.match(NODE_USAGE, new RegExp(`^  --${flag}\\b`, "m"), `--${flag} has its own entry`);
    assert.ok(NODE_USAGE.includes(environmentVariableFor(flag)), environmentVariableFor(flag));
  }
  assert.ok(NODE_USAGE.includes(LEGACY_MDNS_VARIABLE));
  assert.ok(NODE_USAGE.includes(CLUSTER_SECRET_VARIABLE));
  assert.ok(NODE_USAGE.includes(P2P_ENABLED_VARIABLE));
  assert.ok(NODE_USAGE.includes("--help"));
});

Deno.test("MAIN_USAGE lists every command of DESIGN.md section 4a and the version", () => {
  const commands = [
    "blixard node --id N",
    "blixard cluster status  --peer host:port [--json]",
    "blixard cluster leave   --peer host:port",
    "blixard cluster remove  --id N --peer host:port",
    "blixard kv put KEY VALUE --peer host:port",
    "blixard kv get KEY       --peer host:port",
    "blixard kv delete KEY    --peer host:port",
    "blixard kv list [PREFIX] --peer host:port",
    "blixard --help | --version",
  ];
  for (const command of commands) assert.ok(MAIN_USAGE.includes(command), command);
  for (const flag of NODE_FLAGS) assert.ok(MAIN_USAGE.includes(`--${flag}`), `--${flag}`);
  assert.ok(MAIN_USAGE.startsWith(`blixard ${VERSION}:`));
});

Deno.test("usage texts fit in 100 columns and end with one newline", () => {
  for (const text of [MAIN_USAGE, NODE_USAGE]) {
    for (const line of text.split("\n")) assert.ok(line.length <= 100, line);
    assert.ok(text.endsWith("\n") && !text.endsWith("\n\n"));
  }
});
