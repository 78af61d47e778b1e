import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { Progress } from "./progress.ts";

function progress(next: number): Progress {
  return new Progress(next, { maxInflightMessages: 2, isLearner: false });
}

Deno.test("Progress in probe sends one message, then pauses until it is answered", () => {
  const pr = progress(5);
  strictEqual(pr.isPaused(), false);
  pr.sentEntries(3, 7);
  deepStrictEqual([pr.isPaused(), pr.next], [true, 5]);
  strictEqual(pr.maybeUpdate(7), true);
  deepStrictEqual([pr.isPaused(), pr.match, pr.next], [false, 7, 8]);
});

Deno.test("Progress in replicate advances next optimistically and pauses when the window is full", () => {
  const pr = progress(5);
  pr.maybeUpdate(4);
  pr.becomeReplicate();
  pr.sentEntries(2, 6);
  pr.sentEntries(1, 7);
  deepStrictEqual([pr.next, pr.isPaused()], [8, true]);
  pr.maybeUpdate(6);
  pr.inflights.freeLE(6);
  deepStrictEqual([pr.match, pr.isPaused()], [6, false]);
});

Deno.test("Progress.maybeDecreaseTo() in probe jumps to the hint and ignores stale rejections", () => {
  const pr = progress(11);
  pr.maybeUpdate(2);
  pr.next = 11;
  strictEqual(pr.maybeDecreaseTo(9, 4), false);
  strictEqual(pr.maybeDecreaseTo(10, 4), true);
  strictEqual(pr.next, 5);
  strictEqual(pr.maybeDecreaseTo(4, 0), true);
  strictEqual(pr.next, 3);
});

Deno.test("Progress.maybeDecreaseTo() in replicate falls back to match + 1", () => {
  const pr = progress(5);
  pr.maybeUpdate(4);
  pr.becomeReplicate();
  pr.sentEntries(4, 8);
  strictEqual(pr.maybeDecreaseTo(3, 0), false);
  strictEqual(pr.maybeDecreaseTo(6, 2), true);
  strictEqual(pr.next, 5);
});

Deno.test("Progress in snapshot is paused and probes after the snapshot once back to probe", () => {
  const pr = progress(3);
  pr.becomeSnapshot(20);
  strictEqual(pr.isPaused(), true);
  pr.becomeProbe();
  deepStrictEqual([pr.state, pr.next, pr.isPaused()], ["probe", 21, false]);
});

Deno.test("Progress.maybeUpdate() ignores a stale acknowledgement", () => {
  const pr = progress(5);
  pr.maybeUpdate(4);
  strictEqual(pr.maybeUpdate(3), false);
  deepStrictEqual([pr.match, pr.next], [4, 5]);
});
