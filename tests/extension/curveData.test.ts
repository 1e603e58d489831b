// The chart's learning curves: appending live points, thinning, aligning two curves for uPlot.
import assert from "node:assert/strict";
import { test } from "node:test";
import { aligned, CurveSet, curveLabel, MAX_POINTS, thin } from "../../extension/chart/curveData";

test("live points append to the running curve; a new number starts a new one", () => {
  const set = new CurveSet();
  set.append(3, [0, 10], [4, 3]);
  set.append(3, [10, 20], [2.9, 2.5]); // a redrawn step keeps its last value
  assert.deepEqual(set.main, { number: 3, steps: [0, 10, 20], values: [4, 2.9, 2.5] });
  set.append(4, [0], [4.1]);
  assert.deepEqual(set.main, { number: 4, steps: [0], values: [4.1] });
});

test("a clicked experiment's curve takes the running one's place until the next run starts", () => {
  const set = new CurveSet();
  set.append(3, [0, 10], [4, 3]);
  set.select({ number: 2, steps: [0, 5], values: [1, 0.5] });
  assert.equal(set.mainLabel, "selected");
  set.append(3, [20], [2.5]); // the running one keeps growing behind it
  assert.equal(set.main!.number, 2);
  set.append(4, [0], [9]); // a new run: shown again
  assert.deepEqual(set.main, { number: 4, steps: [0], values: [9] });
  assert.equal(set.mainLabel, "running");
});

test("a long live curve stays bounded and keeps its last point", () => {
  const set = new CurveSet();
  for (let s = 0; s < MAX_POINTS * 3; s += 100) {
    const steps = Array.from({ length: 100 }, (_, i) => s + i);
    set.append(1, steps, steps.map((x) => 1 / (x + 1)));
  }
  assert.ok(set.main!.steps.length <= MAX_POINTS + 1);
  assert.equal(set.main!.steps.at(-1), MAX_POINTS * 3 - 1);
  const t = thin({ number: 1, steps: [1, 2, 3, 4, 5], values: [1, 2, 3, 4, 5] }, 2);
  assert.deepEqual(t.steps, [1, 4, 5]);
});

test("two curves align on the union of their steps, null where one has no point", () => {
  const [x, a, b] = aligned(
    { number: 2, steps: [0, 20], values: [3, 2] },
    { number: 1, steps: [0, 10, 20], values: [3.5, NaN, 1.5] },
  );
  assert.deepEqual(x, [0, 10, 20]);
  assert.deepEqual(a, [3, null, 2]);
  assert.deepEqual(b, [3.5, null, 1.5]);
});

test("the label names the running step and value and the best's at the same step", () => {
  const set = new CurveSet();
  set.append(4, [0, 100], [4, 2.5]);
  set.setReference({ number: 2, steps: [0, 100, 200], values: [4, 2.25, 2] });
  assert.equal(curveLabel(set.message("val_loss"), String), "#4 running · step 100: 2.5 · best #2 at step 100: 2.25");
  assert.equal(curveLabel(new CurveSet().message("m"), String), "");
});
