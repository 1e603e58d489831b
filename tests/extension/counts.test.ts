import assert from "node:assert/strict";
import { test } from "node:test";
import { compact, countsText, exact, tally } from "../../extension/counts";
import { loopStatusText, phaseMessage } from "../../extension/format";
import type { LoopState } from "../../extension/protocol";

// The summary of a 1000-row ledger as the daemon sends it: the baseline is not among the counts.
const THOUSAND = { keep: 192, discard: 761, crash: 46 };

test("the total is the sum of the daemon's counts: a line always adds up", () => {
  assert.deepEqual(tally(THOUSAND), { experiments: 999, keep: 192, discard: 761, crash: 46 });
  assert.equal(countsText(THOUSAND), "999 experiments · 192 keep · 761 discard · 46 crash");
  assert.deepEqual(tally(undefined), { experiments: 0, keep: 0, discard: 0, crash: 0 });
});

test("compact numbers from 10,000 up, every digit below; cut, never rounded up", () => {
  assert.equal(compact(9999), "9999");
  assert.equal(compact(10_000), "10k");
  assert.equal(compact(12_345), "12k");
  assert.equal(compact(99_999), "99k");
  assert.equal(compact(100_000), "100k");
  assert.equal(compact(999_999), "999k");
  assert.equal(compact(1_250_000), "1.2M");
  assert.equal(compact(12_500_000), "12M");
  assert.equal(exact(100_000), "100,000");
  assert.equal(exact(999), "999");
});

test("the short form (the tree's header) and the full one say the same numbers", () => {
  const counts = { keep: 19_210, discard: 76_135, crash: 4_654 };
  assert.equal(countsText(counts, true), "99k experiments · 19k keep · 76k discard · 4654 crash");
  assert.equal(countsText(counts), "99,999 experiments · 19,210 keep · 76,135 discard · 4,654 crash");
  assert.equal(countsText({ keep: 2, discard: 1, crash: 1 }, true), countsText({ keep: 2, discard: 1, crash: 1 }));
});

test("the status bar's observer tooltip and the stop message word the counts as the tree does", () => {
  const state: LoopState = { root: "/r", phase: "idle", mode: "observer", tag: "t", counts: THOUSAND };
  assert.match(loopStatusText(state)!.tooltip, /: 999 experiments · 192 keep · 761 discard · 46 crash$/);
  const running: LoopState = { root: "/r", phase: "running", mode: "loop", counts: THOUSAND };
  const stopped: LoopState = { ...running, phase: "stopped" };
  assert.equal(phaseMessage(running, stopped)?.text, "Autoresearch: the loop stopped after 999 experiments · 192 keep · 761 discard · 46 crash.");
});
