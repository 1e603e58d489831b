import assert from "node:assert/strict";
import { test } from "node:test";
import {
  experimentRow,
  formatDelta,
  formatDuration,
  formatMemoryGb,
  formatMetric,
  gpuStatusText,
  loopStatusText,
  phaseMessage,
} from "../../extension/format";
import type { GpuInfo } from "../../extension/protocol";

test("metrics read with six significant digits, tiny and huge ones in exponent form", () => {
  assert.equal(formatMetric(0.9979), "0.9979");
  assert.equal(formatMetric(1.23456789), "1.23457");
  assert.equal(formatMetric(0), "0");
  assert.equal(formatMetric(0.00001234), "1.234e-5");
  assert.equal(formatMetric(null), "—");
  assert.equal(formatMetric(Number.NaN), "—");
});

test("the delta vs best is signed and empty when either side is missing", () => {
  assert.equal(formatDelta(1.5, 1.25), "+0.25");
  assert.equal(formatDelta(1, 1.25), "−0.25");
  assert.equal(formatDelta(1, 1), "±0");
  assert.equal(formatDelta(null, 1), "");
  assert.equal(formatDelta(1, undefined), "");
});

test("memory and durations", () => {
  assert.equal(formatMemoryGb(0), "");
  assert.equal(formatMemoryGb(44.04), "44.0 GB");
  assert.equal(formatDuration(65), "1:05");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(null), "");
});

test("an experiment row shows number, metric, delta, memory and description", () => {
  const row = experimentRow(
    { number: 3, commit: "abcdef1234", status: "discard", metric: 1.01, memory_gb: 2.5, description: "raise\tLR" },
    1.0,
    1,
    "val_bpb",
  );
  assert.equal(row.label, "#3 1.01");
  assert.equal(row.description, "Δ +0.01 · 2.5 GB · raise LR");
  assert.equal(row.icon, "circle-slash");
  assert.equal(row.contextValue, "autoresearch.experiment.discard");
  assert.match(row.tooltip, /val_bpb: 1\.01/);
  assert.match(row.tooltip, /`abcdef1`/);
});

test("the best experiment says so; a crash shows its kind instead of a metric", () => {
  const best = experimentRow({ number: 1, commit: "c", status: "keep", metric: 1 }, 1, 1, "m");
  assert.equal(best.description, "★ best");
  assert.equal(best.icon, "pass-filled");
  const crash = experimentRow({ number: 2, commit: "c", status: "crash", crash_kind: "oom" }, 1, 1, "m");
  assert.equal(crash.label, "#2 oom");
  assert.equal(crash.icon, "error");
});

const gpu = (index: number, used: number, total = 81920, util = 50, temp: number | null = 60): GpuInfo => ({
  index,
  name: "H100",
  utilization: util,
  memory_used_mib: used,
  memory_total_mib: total,
  temperature_c: temp,
});

test("no GPU reads as a clear text", () => {
  assert.equal(gpuStatusText({ available: false, message: "NVML not found" }).text, "$(circle-slash) No GPU");
  assert.equal(gpuStatusText({ available: false, message: "NVML not found" }).tooltip, "NVML not found");
  assert.equal(gpuStatusText(undefined).text, "$(circle-slash) No GPU");
});

test("one GPU is compact; memory over 90% warns", () => {
  const one = gpuStatusText({ available: true, message: "", gpus: [gpu(0, 40960)] });
  assert.equal(one.text, "$(pulse) 50% 40.0 GB/80.0 GB 60°C");
  assert.equal(one.warning, false);
  assert.equal(gpuStatusText({ available: true, message: "", gpus: [gpu(0, 80000)] }).warning, true);
});

test("several GPUs are summarised, each in the tooltip", () => {
  const text = gpuStatusText({ available: true, message: "", gpus: [gpu(0, 8192, 81920, 20, 50), gpu(1, 40960, 81920, 80, 70)] });
  assert.equal(text.text, "$(pulse) 2 GPUs 50% mem ≤50% 70°C");
  assert.equal(text.tooltip.split("\n").length, 2);
});

test("the loop item shows phase, experiment and progress; nothing without a loop", () => {
  assert.equal(loopStatusText(undefined), undefined);
  assert.equal(loopStatusText({ root: "/r", phase: "idle", mode: "none" }), undefined);
  const running = loopStatusText({ root: "/r", phase: "running", mode: "loop", current: 7, elapsed_s: 65, timeout_s: 600, iteration: 7 });
  assert.equal(running?.text, "$(sync~spin) Running #7 1:05/10:00");
  assert.match(running!.tooltip, /iteration 7/);
  assert.equal(loopStatusText({ root: "/r", phase: "paused", mode: "loop" })?.text, "$(debug-pause) Paused");
});

test("the user hears when the loop fails or stops, once", () => {
  const running = { root: "/r", phase: "running" as const, mode: "loop" as const };
  const failed = { root: "/r", phase: "failed" as const, mode: "loop" as const, message: "The baseline run failed\n(metric not found)" };
  assert.deepEqual(phaseMessage(running, failed), {
    severity: "error",
    text: "Autoresearch: the loop failed. The baseline run failed (metric not found)",
  });
  assert.equal(phaseMessage(failed, failed), undefined);
  assert.equal(phaseMessage(undefined, failed), undefined, "not on the first state after activation");
  const stopped = { root: "/r", phase: "stopped" as const, mode: "loop" as const, metric: "val_loss", best: 0.12, counts: { keep: 2, discard: 1, crash: 0 } };
  assert.equal(
    phaseMessage(running, stopped)?.text,
    "Autoresearch: the loop stopped after 3 experiments (2 keep, 1 discard, 0 crash), best val_loss 0.12.",
  );
  assert.equal(phaseMessage({ root: "/r", phase: "idle", mode: "none" }, stopped), undefined);
});
