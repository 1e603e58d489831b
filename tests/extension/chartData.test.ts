import assert from "node:assert/strict";
import { test } from "node:test";
import { ChartSeries, ReducedSeries, toPoint, type ChartPoint } from "../../extension/chart/chartData";

const p = (number: number, status: ChartPoint["status"], metric: number | null): ChartPoint => ({
  number,
  status,
  metric,
  description: `d${number}`,
});

test("points split into keep / discard / crash columns with the running best", () => {
  const s = ChartSeries.from("lower", [p(0, "keep", 2), p(1, "discard", 2.5), p(2, "crash", null), p(3, "keep", 1.5), p(4, "discard", 1.7)]);
  assert.deepEqual(s.columns.x, [0, 1, 2, 3, 4]);
  assert.deepEqual(s.columns.keep, [2, null, null, 1.5, null]);
  assert.deepEqual(s.columns.discard, [null, 2.5, null, null, 1.7]);
  assert.deepEqual(s.columns.crash, [null, null, 2, null, null], "a crash sits on the best line");
  assert.deepEqual(s.columns.best, [2, 2, 2, 1.5, 1.5]);
});

test("the best line follows the daemon's keeps (the branch's tip), whatever the direction", () => {
  const s = ChartSeries.from("higher", [p(0, "keep", 0.5), p(1, "discard", 0.9), p(2, "keep", 0.7), p(3, "crash", null)]);
  assert.deepEqual(s.columns.best, [0.5, 0.5, 0.7, 0.7], "a discard, however good it looks, is not the best");
  assert.deepEqual(s.columns.crash, [null, null, null, 0.7]);
});

test("out of order and repeated numbers are sorted and deduplicated; append refuses them", () => {
  const s = ChartSeries.from("lower", [p(2, "keep", 1), p(0, "keep", 3), p(2, "discard", 4)]);
  assert.deepEqual(s.columns.x, [0, 2]);
  assert.deepEqual(s.columns.discard, [null, 4]);
  assert.equal(s.append([p(1, "keep", 0)]), false);
  assert.equal(s.append([p(3, "keep", 0)]), true);
  assert.equal(s.size, 3);
  assert.equal(s.indexOf(3), 2);
  assert.equal(s.indexOf(1), -1);
});

test("10,000 points build in well under a frame budget per thousand", () => {
  const points = Array.from({ length: 10_000 }, (_, i) => p(i, i % 4 === 0 ? "keep" : "discard", Math.sin(i) + 2));
  const s = ChartSeries.from("lower", points);
  assert.equal(s.size, 10_000);
  assert.equal(s.indexOf(9_999), 9_999);
});

test("toPoint keeps number, status, metric and description", () => {
  assert.deepEqual(toPoint({ number: 1, commit: "c", status: "crash", description: "oom" }), {
    number: 1,
    status: "crash",
    metric: null,
    description: "oom",
  });
});

// ---- a large session, as the daemon reduces it (autoresearch/chartSeries) ----------------------

const reduction = {
  root: "/r",
  tag: "t",
  total: 12,
  span: 4,
  buckets: [
    { first: 0, last: 3, keep: 2, discard: 1, crash: 1, discard_min: 2.5, discard_max: 2.5, best: 1.5 },
    { first: 4, last: 7, keep: 0, discard: 4, crash: 0, discard_min: 1.6, discard_max: 3, best: 1.5 },
    { first: 8, last: 11, keep: 1, discard: 3, crash: 0, discard_min: 1.4, discard_max: 1.9, best: 1.2 },
  ],
  keep_numbers: [0, 1, 10],
  keep_metrics: [2, 1.5, 1.2],
};

test("a reduced session: keeps and columns merged by number, the best stepping at each keep", () => {
  const r = new ReducedSeries(reduction);
  assert.deepEqual(r.columns.x, [0, 1, 1.5, 5.5, 9.5, 10]);
  assert.deepEqual(r.columns.keep, [2, 1.5, null, null, null, 1.2]);
  assert.deepEqual(r.columns.best, [2, 1.5, 1.5, 1.5, 1.5, 1.2]);
  assert.deepEqual(r.columns.low, [null, null, 2.5, 1.6, 1.4, null]);
  assert.deepEqual(r.columns.high, [null, null, 2.5, 3, 1.9, null]);
  assert.equal(r.entries[3]!.bucket!.first, 4);
});

test("records after the reduction fold into its last column, then open new ones of the same span", () => {
  const r = new ReducedSeries({ ...reduction, total: 11, buckets: [...reduction.buckets.slice(0, 2), { ...reduction.buckets[2]!, last: 10, discard: 2, discard_max: 1.8 }] });
  r.append(p(11, "discard", 1.9));
  assert.equal(r.total, 12);
  assert.deepEqual(r.columns.high.filter((v) => v !== null), [2.5, 3, 1.9]);
  r.append(p(12, "crash", null));
  r.append(p(13, "keep", 1.1));
  assert.equal(r.total, 14);
  const last = r.entries[r.entries.length - 1]!;
  assert.deepEqual(last.keep, { number: 13, metric: 1.1 }, "a new keep is a marker and a step");
  assert.equal(r.columns.best[r.columns.best.length - 1], 1.1);
  const bucket = r.entries.find((e) => e.bucket?.first === 12)!.bucket!;
  assert.deepEqual([bucket.first, bucket.last, bucket.crash, bucket.keep], [12, 13, 1, 1]);
  r.append(p(3, "discard", 9)); // older than the last column: already counted by the daemon
  assert.equal(r.total, 14);
});

test("more keeps than columns: no markers, each column's keep range and best stand for them", () => {
  const buckets = Array.from({ length: 1000 }, (_, i) => ({
    first: i * 100, last: i * 100 + 99, keep: 19, discard: 76, crash: 5,
    discard_min: 3 - i / 1000, discard_max: 4 - i / 1000, keep_min: 2 - i / 1000, keep_max: 2.5 - i / 1000, best: 2 - i / 1000,
  }));
  const r = new ReducedSeries({ root: "/r", tag: "t", total: 100_000, span: 100, buckets, keep_numbers: [], keep_metrics: [] });
  assert.equal(r.listed, false);
  assert.equal(r.columns.x.length, 1000, "one x per column");
  assert.ok(r.columns.keep.every((k) => k === null));
  assert.deepEqual([r.columns.low[0], r.columns.high[0], r.columns.best[0]], [2, 4, 2], "the range holds keeps and discards");
  assert.equal(r.columns.best[999], 2 - 999 / 1000);
  r.append(p(100_000, "keep", 0.5));
  assert.equal(r.columns.best[r.columns.best.length - 1], 0.5);
  assert.equal(r.columns.low[r.columns.low.length - 1], 0.5);
});
