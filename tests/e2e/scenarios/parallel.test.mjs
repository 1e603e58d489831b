// Parallel experiments on 2 fake GPUs ([parallel] workers = "auto", the daemon's fake GPU source):
// Start Loop runs two experiments at once; the results tree shows each running one with its
// worker and GPU, the status bar reads "2/2 GPUs busy", the GPU tooltip says which worker uses
// which GPU; once stopped, results.tsv has every experiment in number order and each recorded
// row names the worker and GPU it ran on; the chart draws a lane per worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { answerInput, makeTempDir, runCommand, screenshot, waitFor, webviewFrame } from '../harness.mjs';
import { makeDemoRepo, pickStep, readResults, showResults, stepTimer, waitForState, withAutoresearch } from '../autoresearch.mjs';

const GPUS = {
  available: true,
  message: '2 fake GPUs',
  gpus: [0, 1].map((index) => ({
    index, name: 'Fake H100 80GB', utilization: 90, memory_used_mib: 40960, memory_total_mib: 81559,
    temperature_c: 60, power_w: 300, processes: [],
  })),
};

const running = (items, worker, gpu) =>
  items.find((r) => new RegExp(`^#\\d+ \\w+ · worker ${worker} · GPU ${gpu}$`).test(r.label));

test('parallel: two fake GPUs, two experiments running at once in the tree and the status bar', { timeout: 240_000 }, async () => {
  // Each run sleeps 3 s, so both workers are surely seen busy together.
  const workspace = makeDemoRepo({
    tomlEdit: (t) => `${t.replace('command = "python3 train.py"', 'command = "sleep 3 && python3 train.py"')}\n[parallel]\nworkers = "auto"\n`,
  });
  const gpuFile = path.join(makeTempDir('ar-e2e-gpu-'), 'gpu.json');
  fs.writeFileSync(gpuFile, JSON.stringify(GPUS));
  const mark = stepTimer('parallel');

  await withAutoresearch('parallel', { workspace, env: { AUTORESEARCH_FAKE_GPU: gpuFile } }, async ({ page, stateFile }) => {
    await showResults(page);
    await waitForState(stateFile, (s) => s.daemon === 'ready');
    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '4', { prompt: /How many experiments/ });
    mark('started');

    // Both workers busy at once: a running row each, with its worker and GPU, and the status bar.
    const busy = await waitForState(stateFile, (s) => running(s.tree.items, 1, 0) && running(s.tree.items, 2, 1) &&
      /2\/2 GPUs busy/.test(s.statusBar.loop), { timeoutMs: 120_000, message: 'two experiments running at once' });
    const numbers = [running(busy.tree.items, 1, 0), running(busy.tree.items, 2, 1)].map((r) => Number(/^#(\d+)/.exec(r.label)[1]));
    assert.notEqual(numbers[0], numbers[1], 'two experiments, not one shown twice');
    mark('two running');
    await screenshot(page, 'parallel-running');
    // The GPU item says which worker uses which GPU.
    const gpus = await waitForState(stateFile, (s) => /· worker 1 · #\d+/.test(s.statusBar.gpuTooltip) &&
      /· worker 2 · #\d+/.test(s.statusBar.gpuTooltip), { message: 'the GPU tooltip naming the workers' });
    assert.match(gpus.statusBar.gpuTooltip, /GPU 0 Fake H100 80GB:.*· worker 1/);
    assert.match(gpus.statusBar.gpuTooltip, /GPU 1 Fake H100 80GB:.*· worker 2/);

    // Done: the baseline and 4 experiments, in number order, each on a worker and its GPU.
    const done = await waitForState(stateFile, (s) => s.phase === 'stopped' && s.tree.items.length === 5,
      { timeoutMs: 120_000, message: 'the loop to stop after 4 experiments' });
    mark('stopped');
    const results = readResults(path.join(workspace, 'results.tsv'));
    assert.equal(results.length, 5);
    assert.equal(results[0].description, 'baseline');
    const records = fs.readFileSync(path.join(workspace, '.autoresearch', 'experiments.jsonl'), 'utf8')
      .trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(records.map((r) => r.number), [0, 1, 2, 3, 4]);
    assert.deepEqual(new Set(records.slice(1).map((r) => `${r.worker}:${r.gpus.join(',')}`)), new Set(['1:0', '2:1']));
    for (const r of records.slice(1)) {
      const row = done.tree.items.find((item) => item.label.startsWith(`#${r.number} `));
      assert.ok(row, `#${r.number} in the tree`);
      assert.match(`${row.label} ${row.description}`, new RegExp(`worker ${r.worker} · GPU ${r.gpus[0]}`), `#${r.number}: its worker and GPU`);
    }
    assert.doesNotMatch(done.statusBar.loop, /busy/, 'no worker shown busy once stopped');
    await screenshot(page, 'parallel-done');

    // The chart marks what ran side by side: a lane per worker, named in its legend.
    await runCommand(page, 'Autoresearch: Show Chart');
    await waitForState(stateFile, (s) => s.chart.open && s.chart.points === 5, { message: 'the chart with 5 points' });
    const chart = webviewFrame(page);
    await waitFor(async () => /2 workers' lanes/.test(await chart.locator('body').innerText().catch(() => '')),
      { message: "the chart's legend naming the workers' lanes" });
    await screenshot(page, 'parallel-chart');
  });
});
