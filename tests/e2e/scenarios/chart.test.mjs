// The chart webview: opened before the loop (empty), it follows the loop live and ends with one
// point per experiment (baseline + 3), each point's hover naming that experiment's number,
// status and metric as results.tsv has them; clicking a point opens that experiment's changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { answerInput, runCommand, screenshot, waitFor, webviewFrame } from '../harness.mjs';
import {
  formatMetric, makeDemoRepo, pickStep, readResults, stepTimer, waitForState, withAutoresearch,
} from '../autoresearch.mjs';

test('chart: one point per experiment, live, hover and click', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo(); // autoresearch.toml: sweep, seed 7
  const mark = stepTimer('chart');
  await withAutoresearch('chart', { workspace }, async ({ page, stateFile }) => {
    mark('launched');
    await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });
    mark('daemon ready');
    await runCommand(page, 'Autoresearch: Show Chart');
    mark('command run');
    const chart = webviewFrame(page);
    await chart.locator('#summary').filter({ hasText: /^0 experiments/ }).waitFor();
    assert.ok(await chart.locator('#empty').isVisible(), '"No experiments yet." before the loop');
    await waitForState(stateFile, (s) => s.chart.open && s.chart.points === 0);
    mark('chart open');

    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '3', { prompt: /How many experiments/ });
    await waitForState(stateFile, (s) => s.phase === 'stopped' && s.chart.points === 4,
      { timeoutMs: 120_000, message: 'the loop to end with 4 points charted' });
    const results = readResults(path.join(workspace, 'results.tsv'));
    assert.equal(results.length, 4);
    mark('loop done');

    // What the webview shows: the daemon's numbers, as the tree has them (the baseline is not
    // counted as an experiment), the best, the counts by status.
    const counts = { keep: 0, discard: 0, crash: 0 };
    for (const r of results.slice(1)) counts[r.status]++;
    const best = Math.min(...results.filter((r) => r.status === 'keep').map((r) => Number(r.metric)));
    const summary = await chart.locator('#summary').filter({ hasText: /^3 experiments/ }).textContent({ timeout: 30_000 });
    assert.match(summary, new RegExp(`^3 experiments · best val_loss ${formatMetric(best).replace('.', '\\.')} `));
    assert.match(summary, new RegExp(`● ${counts.keep} keep.*● ${counts.discard} discard.*● ${counts.crash} crash`));
    assert.ok(!(await chart.locator('#empty').isVisible()));
    await screenshot(page, 'chart');

    // One point per experiment: sweeping the cursor over the plot hovers each of them once.
    const over = chart.locator('.u-over');
    const box = await over.boundingBox();
    const seen = new Map();
    for (let i = 0; i <= 40; i++) {
      await over.hover({ position: { x: (box.width - 2) * (i / 40) + 1, y: box.height / 2 }, force: true });
      const tip = chart.locator('#tooltip');
      if (!(await tip.isVisible())) continue;
      const text = await tip.textContent();
      const m = text.match(/^#(\d+) (keep|discard|crash) · val_loss (\S+)/);
      if (m) seen.set(Number(m[1]), { status: m[2], metric: m[3], text });
    }
    assert.deepEqual([...seen.keys()].sort(), [0, 1, 2, 3], 'a point for each experiment');
    for (const [i, r] of results.entries()) {
      assert.equal(seen.get(i).status, r.status, `#${i} status`);
      assert.equal(seen.get(i).metric, formatMetric(r.metric), `#${i} metric`);
      if (i > 0) assert.ok(seen.get(i).text.includes(r.description), `#${i} description in the hover`);
    }
    mark('hovered');

    // Click the last experiment's point: its changes open (multi-file diff editor or a diff).
    await over.hover({ position: { x: box.width - 2, y: box.height / 2 }, force: true });
    await chart.locator('#tooltip').filter({ hasText: /^#3 / }).waitFor();
    await over.click({ position: { x: box.width - 2, y: box.height / 2 }, force: true });
    await waitFor(async () => (await page.locator('.tabs-container .tab').allTextContents()).some((t) => /Experiment #3|train\.py \(#3/.test(t)),
      { message: async () => `the changes of #3 (tabs: ${JSON.stringify(await page.locator('.tabs-container .tab').allTextContents())})` });
    mark('clicked');
    await screenshot(page, 'chart-click');
  });
});
