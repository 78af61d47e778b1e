import assert from "node:assert/strict";
import { UsageError } from "../util/errors.ts";
import { parseNodeConfig } from "./node_config.ts";

const votersMax = (value: string) =>
  parseNodeConfig(["--id", "1", "--max-voters", value], {}).votersMax;

Deno.test("parseNodeConfig() takes --max-voters as an odd number from 1 to 9, 5 when absent", () => {
  assert.equal(parseNodeConfig(["--id", "1"], {}).votersMax, 5);
  for (const value of ["1", "3", "5", "7", "9"]) assert.equal(votersMax(value), Number(value));
});

Deno.test("parseNodeConfig() refuses an even, zero, too large or malformed --max-voters, naming it", () => {
  for (const value of ["4", "0", "11", "5.0", "five", "05"]) {
    assert.throws(() => votersMax(value), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.equal(
        error.message,
        `--max-voters ${value}: must be an odd number from 1 to 9 (e.g. 3, 5, 7): an even ` +
          "number of voters tolerates no more failures than one fewer",
      );
      return true;
    });
  }
});
