// A parallel loop's workers as the user sees them: the tree's running rows, the status bar, the
// GPU item, the chart. And the one-at-a-time loop (no workers) exactly as before.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ChartSeries, pointText, ReducedSeries, toPoint } from "../../extension/chart/chartData";
import { experimentRow, experimentTooltip, formatMetric, gpuStatusText, loopStatusText } from "../../extension/format";
import type { Experiment, GpuInfo, LoopState, WorkerState } from "../../extension/protocol";
import { modelOver, pagesOf } from "./treeFixtures";
import { busyText, gpuUsers, workerText } from "../../extension/workers";

const worker = (n: number, gpus: number[], number: number | null, extra: Partial<WorkerState> = {}): WorkerState => ({
  worker: n,
  gpus,
  phase: number === null ? "idle" : "running",
  number,
  description: number === null ? "" : `LR 0.0${n} -> 0.0${n + 1}`,
  elapsed_s: number === null ? null : 30 + n,
  timeout_s: number === null ? null : 600,
  parent: "abcdef1234567890",
  ...extra,
});

/** Four workers on four GPUs: three in flight (#14, #15, #16), worker 4 between experiments. */
const parallel = (extra: Partial<LoopState> = {}): LoopState => ({
  root: "/r",
  phase: "running",
  mode: "loop",
  tag: "nov25",
  branch: "autoresearch/nov25",
  direction: "lower",
  metric: "val_bpb",
  current: 14,
  iteration: 14,
  workers: [worker(1, [0], 15), worker(2, [1], 14), worker(3, [2], 16), worker(4, [3], null)],
  ...extra,
});

function ledger(n: number): Experiment[] {
  return Array.from({ length: n }, (_, i) => ({
    number: i,
    commit: `c${i}`.padEnd(40, "0"),
    status: i === 0 ? "keep" : "discard",
    metric: 2 - i / 100,
    tag: "nov25",
    ...(i > 0 ? { worker: 1 + (i % 2), gpus: [i % 2] } : {}),
  }));
}


const summary = (total: number) => [{ tag: "nov25", branch: "autoresearch/nov25", total, counts: {} }];

test("tree: each experiment in flight is its own running entry on top, lowest number first, with its worker and GPU", async () => {
  const { model, setState } = modelOver(pagesOf(ledger(14)));
  setState(parallel({ sessions: summary(14) }));
  const children = await model.sessionChildren("nov25");
  assert.deepEqual(children.slice(0, 4), [
    { kind: "running", tag: "nov25", worker: 2 },
    { kind: "running", tag: "nov25", worker: 1 },
    { kind: "running", tag: "nov25", worker: 3 },
    { kind: "experiment", tag: "nov25", number: 13 },
  ]);
  const rows = (await model.currentRows()).items;
  assert.deepEqual(rows.slice(0, 3).map((r) => r.label), [
    "#14 running · worker 2 · GPU 1",
    "#15 running · worker 1 · GPU 0",
    "#16 running · worker 3 · GPU 2",
  ]);
  assert.equal(rows[0]!.description, "0:32 / 10:00 · LR 0.02 -> 0.03");
  assert.equal(rows[0]!.id, "experiment:nov25:14:running");
  assert.equal(rows[0]!.icon, "loading~spin");
  assert.equal(rows[0]!.contextValue, "autoresearch.running");
  assert.match(rows[0]!.tooltip, /^Experiment #14 is being made by worker 2 · GPU 1: Running \(0:32 \/ 10:00\)/);
  assert.match(rows[0]!.tooltip, /started from `abcdef1`/);
});

test("tree: a recorded experiment leaves the running entries; its row and tooltip say where it ran", async () => {
  const { model, setState } = modelOver(pagesOf(ledger(14)));
  setState(parallel({ sessions: summary(14) }));
  await model.sessionChildren("nov25");
  const changed: (string | undefined)[] = [];
  model.onChange((tag) => changed.push(tag));
  // #14 is recorded before the state that drops it from worker 2 comes: it is not shown twice.
  model.record({ root: "/r", tag: "nov25", experiment: { number: 14, commit: "d", status: "discard", metric: 1.9, worker: 2, gpus: [1], description: "LR 0.02 -> 0.03" } });
  const children = await model.sessionChildren("nov25");
  assert.deepEqual(children.slice(0, 3), [
    { kind: "running", tag: "nov25", worker: 1 },
    { kind: "running", tag: "nov25", worker: 3 },
    { kind: "experiment", tag: "nov25", number: 14 },
  ]);
  const row = model.experimentRow("nov25", 14)!;
  assert.match(row.description, / · worker 2 · GPU 1$/);
  assert.match(row.tooltip, /- ran on: worker 2 · GPU 1/);
  // Worker 2 takes #17: the tree refreshes, and shows it.
  changed.length = 0;
  setState(parallel({ sessions: summary(15), workers: [worker(1, [0], 15), worker(2, [1], 17), worker(3, [2], 16), worker(4, [3], null)] }));
  assert.ok(changed.includes("nov25"));
  const labels = (await model.currentRows()).items.slice(0, 3).map((r) => r.label);
  assert.deepEqual(labels, ["#15 running · worker 1 · GPU 0", "#16 running · worker 3 · GPU 2", "#17 running · worker 2 · GPU 1"]);
});

test("tree: a worker's elapsed time moving refreshes the session; nothing new refreshes nothing", async () => {
  const { model, setState } = modelOver(pagesOf(ledger(14)));
  setState(parallel({ sessions: summary(14) }));
  const changed: (string | undefined)[] = [];
  model.onChange((tag) => changed.push(tag));
  setState(parallel({ sessions: summary(14) }));
  assert.deepEqual(changed, []);
  setState(parallel({ sessions: summary(14), workers: [worker(1, [0], 15, { elapsed_s: 90 }), worker(2, [1], 14), worker(3, [2], 16), worker(4, [3], null)] }));
  assert.deepEqual(changed, ["nov25"]);
});

test("tree: CPU slots show without a GPU; a stopped loop's workers show nothing", async () => {
  const { model, setState } = modelOver(pagesOf(ledger(3)));
  setState(parallel({ sessions: summary(3), workers: [worker(1, [], 3), worker(2, [], null)] }));
  assert.deepEqual((await model.currentRows()).items.map((r) => r.label).slice(0, 1), ["#3 running · worker 1"]);
  setState(parallel({ sessions: summary(3), phase: "stopped", workers: [worker(1, [], 3)] }));
  assert.equal((await model.sessionChildren("nov25"))[0]!.kind, "experiment");
});

test("tree: without workers the single running entry is today's", async () => {
  const { model, setState } = modelOver(pagesOf(ledger(3)));
  setState(parallel({ sessions: summary(3), workers: [], current: 3, elapsed_s: 65, timeout_s: 600 }));
  const children = await model.sessionChildren("nov25");
  assert.deepEqual(children[0], { kind: "running", tag: "nov25" });
  const row = (await model.currentRows()).items[0]!;
  assert.equal(row.label, "#3 running");
  assert.equal(row.description, "1:05 / 10:00");
  assert.equal(row.id, "experiment:nov25:3:running");
  // A one-worker loop's records carry no worker: their rows are as before.
  const plain: Experiment = { number: 1, commit: "c", status: "discard", metric: 1.5, description: "x" };
  assert.equal(experimentRow(plain, undefined, null, "m").description, "1.5");
  assert.doesNotMatch(experimentTooltip(plain, undefined, "m"), /ran on/);
});

test("status bar: '3/4 GPUs busy', each worker in the tooltip; CPU slots count workers", () => {
  const text = loopStatusText(parallel())!;
  assert.equal(text.text, "$(sync~spin) 3/4 GPUs busy");
  assert.deepEqual(text.tooltip.split("\n").slice(1), [
    "worker 1 · GPU 0: #15 running 0:31 / 10:00 · LR 0.01 -> 0.02",
    "worker 2 · GPU 1: #14 running 0:32 / 10:00 · LR 0.02 -> 0.03",
    "worker 3 · GPU 2: #16 running 0:33 / 10:00 · LR 0.03 -> 0.04",
    "worker 4 · GPU 3: idle",
  ]);
  assert.equal(loopStatusText(parallel({ workers: [worker(1, [0, 1], 5), worker(2, [2, 3], 6)] }))!.text, "$(sync~spin) 4/4 GPUs busy");
  assert.equal(loopStatusText(parallel({ workers: [worker(1, [], 5), worker(2, [], 6), worker(3, [], null)] }))!.text, "$(sync~spin) 2/3 workers busy");
  assert.equal(loopStatusText(parallel({ phase: "paused", workers: [worker(1, [0], 5), worker(2, [1], null)] }))!.text, "$(debug-pause) Paused · 1/2 GPUs busy");
  assert.equal(busyText([worker(1, [0], null)]), "0/1 GPUs busy");
  // A stopped loop and the one-at-a-time loop read as before.
  assert.equal(loopStatusText(parallel({ phase: "stopped", current: null }))!.text, "$(beaker) Stopped");
  assert.equal(loopStatusText(parallel({ workers: [], current: 7, elapsed_s: 65, timeout_s: 600 }))!.text, "$(sync~spin) Running #7 1:05/10:00");
});

const gpu = (index: number): GpuInfo => ({
  index,
  name: "Fake H100",
  utilization: 90,
  memory_used_mib: 20480,
  memory_total_mib: 81920,
  temperature_c: 60,
});

test("GPU item: each GPU's line says which worker uses it and on what", () => {
  const status = { available: true, message: "", gpus: [gpu(0), gpu(1), gpu(2), gpu(3)] };
  const users = gpuUsers(parallel());
  assert.deepEqual([...users], [[0, "worker 1 · #15"], [1, "worker 2 · #14"], [2, "worker 3 · #16"], [3, "worker 4"]]);
  assert.deepEqual(gpuStatusText(status, users).tooltip.split("\n"), [
    "GPU 0 Fake H100: 90% · 20.0 GB/80.0 GB · 60°C · worker 1 · #15",
    "GPU 1 Fake H100: 90% · 20.0 GB/80.0 GB · 60°C · worker 2 · #14",
    "GPU 2 Fake H100: 90% · 20.0 GB/80.0 GB · 60°C · worker 3 · #16",
    "GPU 3 Fake H100: 90% · 20.0 GB/80.0 GB · 60°C · worker 4",
  ]);
  // No parallel loop (or not a loop at all): the lines are as before.
  assert.equal(gpuUsers(parallel({ workers: [] })).size, 0);
  assert.equal(gpuUsers({ ...parallel(), mode: "observer" }).size, 0);
  assert.equal(gpuStatusText(status, gpuUsers(undefined)).tooltip, gpuStatusText(status).tooltip);
  assert.doesNotMatch(gpuStatusText(status).tooltip, /worker/);
});

test("chart: a parallel loop's points carry their worker; the hover names it; lanes per worker", () => {
  const points = ledger(6).map(toPoint);
  assert.deepEqual(points[1], { number: 1, status: "discard", metric: 1.99, description: "", worker: 2, gpus: [1] });
  assert.equal("worker" in points[0]!, false, "a point without a worker costs nothing more");
  assert.equal(pointText({ ...points[1]!, description: "LR up" }, "val_bpb", formatMetric), "#1 discard · val_bpb 1.99 · worker 2 · GPU 1\nLR up");
  assert.equal(pointText(points[0]!, "val_bpb", formatMetric), "#0 keep · val_bpb 2");
  assert.deepEqual(ChartSeries.from("lower", points).lanes, [1, 2]);
  assert.deepEqual(ChartSeries.from("lower", [points[0]!]).lanes, [], "the one-at-a-time chart has no lanes");
  const growing = ChartSeries.from("lower", [{ ...points[1]!, worker: 3 }]);
  growing.append([points[2]!, points[3]!]);
  assert.deepEqual(growing.lanes, [1, 2, 3], "lanes stay sorted as workers appear");
  assert.equal(workerText(3, [4, 5]), "worker 3 · GPUs 4,5");
});

test("chart: a reduced session counts each column's parallel experiments, new records folded in", () => {
  const reduced = new ReducedSeries({
    root: "/r",
    tag: "nov25",
    total: 20,
    span: 10,
    buckets: [
      { first: 0, last: 9, keep: 1, discard: 9, parallel: 0, discard_min: 1, discard_max: 2, best: 1 },
      { first: 10, last: 19, keep: 0, discard: 10, parallel: 10, discard_min: 1, discard_max: 2, best: 1 },
    ],
    keep_numbers: [0],
    keep_metrics: [1],
  });
  reduced.append({ number: 20, status: "discard", metric: 1.5, description: "", worker: 2, gpus: [1] });
  reduced.append({ number: 21, status: "discard", metric: 1.5, description: "" });
  const buckets = reduced.entries.filter((e) => e.bucket).map((e) => e.bucket!.parallel ?? 0);
  assert.deepEqual(buckets, [0, 10, 1]);
});
