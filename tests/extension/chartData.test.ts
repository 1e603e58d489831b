import assert from "node:assert/strict";
import { test } from "node:test";
import { ChartSeries, toPoint, type ChartPoint } from "../../extension/chart/chartData";

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
