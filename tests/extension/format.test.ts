import assert from "node:assert/strict";
import { test } from "node:test";
import {
  countsText,
  experimentRow,
  experimentTooltip,
  formatCost,
  gpuMessage,
  gpuWithoutDaemonText,
  formatDelta,
  formatDuration,
  formatMemoryGb,
  formatMetric,
  gpuStatusText,
  loopStatusText,
  phaseMessage,
  restartCost,
} from "../../extension/format";
import type { Experiment, GpuInfo, LoopState } from "../../extension/protocol";

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

test("an experiment row leads with the change; metric, delta and memory after it", () => {
  const row = experimentRow(
    { number: 3, commit: "abcdef1234", status: "discard", metric: 1.01, memory_gb: 2.5, description: "raise\tLR", reason: "worse by 0.01" },
    { number: 1, metric: 1.0 },
    1,
    "val_bpb",
  );
  assert.equal(row.label, "#3 raise LR");
  assert.equal(row.description, "1.01 · Δ +0.01 · 2.5 GB");
  assert.equal(row.icon, "circle-slash");
  assert.equal(row.contextValue, "autoresearch.experiment.discard");
  assert.match(row.tooltip, /val_bpb: 1\.01/);
  assert.match(row.tooltip, /`abcdef1`/);
  // One reference in one tooltip: the delta and the daemon's reason measure against the same best.
  assert.match(row.tooltip, /- vs #1, the best before it \(1\): \+0\.01\n/);
  assert.match(row.tooltip, /- reason: worse by 0\.01/);
});

test("the best experiment says so; a crash shows its kind instead of a metric; the baseline has no delta", () => {
  const best = experimentRow({ number: 1, commit: "c", status: "keep", metric: 0.9, description: "LR 0.1 -> 0.2" }, { number: 0, metric: 1 }, 1, "m");
  assert.equal(best.label, "#1 LR 0.1 -> 0.2");
  assert.equal(best.description, "0.9 · ★ best · Δ −0.1");
  assert.equal(best.icon, "pass-filled");
  const crash = experimentRow({ number: 2, commit: "c", status: "crash", crash_kind: "oom", description: "x" }, { number: 1, metric: 0.9 }, 1, "m");
  assert.equal(crash.label, "#2 x");
  assert.equal(crash.description, "oom");
  assert.equal(crash.icon, "error");
  const baseline = experimentRow({ number: 0, commit: "c", status: "keep", metric: 1, description: "baseline" }, undefined, 1, "m");
  assert.equal(baseline.description, "1");
  assert.doesNotMatch(baseline.tooltip, /vs #/);
});

test("one wording for the counts: experiments after the baseline, then each outcome", () => {
  assert.equal(countsText({ keep: 4, discard: 10 }), "14 experiments · 4 keep · 10 discard · 0 crash");
  assert.equal(countsText({ keep: 1 }), "1 experiment · 1 keep · 0 discard · 0 crash");
  assert.equal(countsText(undefined), "0 experiments · 0 keep · 0 discard · 0 crash");
});

const gpu = (index: number, used: number, total = 81920, util = 50, temp: number | null = 60): GpuInfo => ({
  index,
  name: "H100",
  utilization: util,
  memory_used_mib: used,
  memory_total_mib: total,
  temperature_c: temp,
});

test("no GPU reads as a clear text; NVML's errors in plain words", () => {
  assert.equal(gpuStatusText({ available: false, message: "NVML not found" }).text, "$(circle-slash) No GPU");
  assert.equal(gpuStatusText({ available: false, message: "NVML not found" }).tooltip, "NVML not found");
  assert.equal(gpuStatusText(undefined).text, "$(circle-slash) No GPU");
  assert.equal(
    gpuStatusText({ available: false, message: "NVML Shared Library Not Found" }).tooltip,
    "No NVIDIA driver found on this machine, so no GPU figures (NVML, the driver's library, is missing).",
  );
  assert.match(gpuMessage("Driver Not Loaded"), /driver is installed but not loaded/);
  assert.equal(gpuMessage(""), "No NVIDIA GPU found on this machine.");
});

test("without a daemon the GPU item says why instead of waiting for ever", () => {
  assert.equal(gpuWithoutDaemonText("starting", undefined).text, "$(sync~spin) GPU");
  assert.match(gpuWithoutDaemonText("starting", "asking").tooltip, /not installed yet/);
  assert.match(gpuWithoutDaemonText("starting", "installing").tooltip, /installing/);
  assert.equal(gpuWithoutDaemonText("failed", undefined).text, "$(circle-slash) GPU: no daemon");
  assert.match(gpuWithoutDaemonText("failed", undefined).tooltip, /not running/);
  assert.match(gpuWithoutDaemonText("crashed", undefined).tooltip, /restarting/);
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

test("a Ray cluster's GPUs read as busy / total, each in use or free in the tooltip", () => {
  const cluster = (index: number, util: number) => ({ index, name: "Ray cluster", utilization: util, memory_used_mib: 0, memory_total_mib: 0 });
  const message = "Ray cluster http://head:8265: 1/2 GPUs in use";
  const text = gpuStatusText({ available: true, message, gpus: [cluster(0, 100), cluster(1, 0)] });
  assert.equal(text.text, "$(cloud) Ray 1/2 GPUs busy");
  assert.equal(text.tooltip, `${message}\nGPU 0: in use\nGPU 1: free`);
  assert.equal(text.warning, false);
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
  const stopped = { root: "/r", phase: "stopped" as const, mode: "loop" as const, metric: "val_loss", best: 0.12, best_number: 2, counts: { keep: 2, discard: 1, crash: 0 } };
  assert.equal(
    phaseMessage(running, stopped)?.text,
    "Autoresearch: the loop stopped after 3 experiments · 2 keep · 1 discard · 0 crash, best val_loss 0.12 (#2).",
  );
  assert.equal(phaseMessage({ root: "/r", phase: "idle", mode: "none" }, stopped), undefined);
  // Stopped by itself ([stop] ...): the loop's notice says why, with the best to open; not twice.
  assert.equal(phaseMessage(running, { ...stopped, message: "stopped: 20 experiments in a row without a keep" }), undefined);
});

test("the agent's cost: per experiment in its tooltip, summed over a session, absent when unknown", () => {
  const priced = { number: 1, commit: "a".repeat(40), status: "keep", cost_usd: 0.025, tokens: 3150 } as Experiment;
  const counted = { number: 2, commit: "b".repeat(40), status: "keep", tokens: 2100 } as Experiment;
  const silent = { number: 3, commit: "c".repeat(40), status: "keep" } as Experiment;
  assert.equal(formatCost([priced]), "$0.025, 3,150 tokens");
  assert.equal(formatCost([priced, counted, silent]), "$0.025, 5,250 tokens");
  assert.equal(formatCost([silent]), "");
  assert.match(experimentTooltip(priced, undefined, "val_loss"), /- agent cost: \$0\.025, 3,150 tokens/);
  assert.doesNotMatch(experimentTooltip(silent, undefined, "val_loss"), /agent cost/);
});

test("a daemon restart asks first only when it would stop or pause the loop", () => {
  const loop = (agent: string, phase: LoopState["phase"] = "running"): LoopState => ({ root: "/r", mode: "loop", phase, agent });
  // The editor agent's loop runs inside the daemon: a restart stops it.
  assert.match(restartCost(loop("editor")) ?? "", /loop stops/);
  // A manual loop runs detached but pauses with no editor attached.
  assert.match(restartCost(loop("manual", "editing")) ?? "", /pauses until you resume/);
  assert.equal(restartCost(loop("manual", "paused")), undefined);
  // Every other loop runs detached: the daemon attaches to it again, nothing to ask.
  assert.equal(restartCost(loop("sweep")), undefined);
  assert.equal(restartCost(loop("command")), undefined);
  assert.equal(restartCost(loop("editor", "stopped")), undefined);
  assert.equal(restartCost({ root: "/r", mode: "observer", phase: "running", agent: "editor" }), undefined);
  assert.equal(restartCost(undefined), undefined);
});
