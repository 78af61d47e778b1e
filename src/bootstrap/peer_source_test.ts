import assert from "node:assert/strict";
import { BootstrapError } from "./bootstrap_error.ts";
import { parsePeerEntry, resolvePeerEntry, type TxtResolver } from "./peer_source.ts";

Deno.test("parsePeerEntry() maps host:port to the /bootstrap URL on port + 1000", () => {
  const cases: [string, string][] = [
    ["127.0.0.1:7001", "http://127.0.0.1:8001/bootstrap"],
    ["[::1]:7002", "http://[::1]:8002/bootstrap"],
    ["node-1.example.com:64535", "http://node-1.example.com:65535/bootstrap"],
  ];
  for (const [entry, url] of cases) {
    assert.deepStrictEqual(parsePeerEntry(entry), { kind: "http", entry, url });
  }
});

Deno.test("parsePeerEntry() uses an http(s) URL as given", () => {
  for (const url of ["http://127.0.0.1:9000/bootstrap", "https://seed.example/custom/path?x=1"]) {
    assert.deepStrictEqual(parsePeerEntry(url), { kind: "http", entry: url, url });
  }
});

Deno.test("parsePeerEntry() reads dns:NAME as a TXT lookup", () => {
  assert.deepStrictEqual(parsePeerEntry("dns:seeds.blixard.example"), {
    kind: "dns",
    entry: "dns:seeds.blixard.example",
    name: "seeds.blixard.example",
  });
});

Deno.test("parsePeerEntry() refuses malformed entries with the rule they break", () => {
  const cases: [string, RegExp][] = [
    ["", /1–2048 characters/],
    ["127.0.0.1", /must be host:port/],
    ["127.0.0.1:64536", /port of 1–64535/],
    ["127.0.0.1:0", /port of 1–64535/],
    ["256.1.1.1:7001", /"256\.1\.1\.1" is not an IP address/],
    ["bad_host!:7001", /not an IP address or host name/],
    ["[::g]:7001", /not an IP address/],
    ["ftp://seed/bootstrap", /only http:\/\/ and https:\/\//],
    ["http://user:secret@seed/bootstrap", /must not hold credentials/],
    ["dns:", /"" is not a DNS name/],
    ["dns:bad name", /not a DNS name/],
  ];
  for (const [entry, rule] of cases) {
    assert.throws(
      () => parsePeerEntry(entry),
      (error) =>
        error instanceof BootstrapError && error.reason === "invalid_peer_entry" &&
        rule.test(error.message),
      entry,
    );
  }
});

Deno.test("resolvePeerEntry() turns each usable TXT record into a source and skips the rest", async () => {
  const queried: string[] = [];
  const resolveTxt: TxtResolver = (name) => {
    queried.push(name);
    return Promise.resolve([["10.0.0.1:", "7001"], ["not a peer"], ["https://seed.example/b"]]);
  };
  const sources = await resolvePeerEntry(parsePeerEntry("dns:seeds.example"), { resolveTxt });
  assert.deepStrictEqual(queried, ["seeds.example"]);
  assert.deepStrictEqual(sources, [
    { peer: "10.0.0.1:7001 (dns:seeds.example)", url: "http://10.0.0.1:8001/bootstrap" },
    { peer: "https://seed.example/b (dns:seeds.example)", url: "https://seed.example/b" },
  ]);
});

Deno.test("resolvePeerEntry() reports a failed lookup and a name without usable records", async () => {
  const failing: TxtResolver = () => Promise.reject(new Error("NXDOMAIN"));
  const useless: TxtResolver = () => Promise.resolve([["dns:loop.example"]]);
  for (
    const [resolveTxt, message] of [[failing, /TXT lookup failed: NXDOMAIN/], [
      useless,
      /no TXT record/,
    ]] as const
  ) {
    await assert.rejects(
      resolvePeerEntry(parsePeerEntry("dns:seeds.example"), { resolveTxt }),
      (error) =>
        error instanceof BootstrapError && error.reason === "dns_failed" &&
        error.peer === "dns:seeds.example" && message.test(error.message),
    );
  }
});

Deno.test("resolvePeerEntry() gives a host:port entry its single source without any lookup", async () => {
  const resolveTxt: TxtResolver = () => Promise.reject(new Error("must not be called"));
  assert.deepStrictEqual(await resolvePeerEntry(parsePeerEntry("127.0.0.1:7001"), { resolveTxt }), [
    { peer: "127.0.0.1:7001", url: "http://127.0.0.1:8001/bootstrap" },
  ]);
});
