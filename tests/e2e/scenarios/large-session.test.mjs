// 100,000 experiments made by the benchmark's own generator (tests/bench/scale.py: real commits,
// results.tsv and experiments.jsonl as the loop leaves them), in the real VS Code (issue #21):
// - the extension activates when the workspace holds a session (workspaceContains), so the
//   daemon is ready before the view is clicked;
// - the tree's first rows after the click;
// - the chart drawn from the daemon's reduction (not 100,000 markers in one message): its first
//   render and the window's longest frame gap meanwhile, from a requestAnimationFrame heartbeat
//   in the workbench page;
// - a deep experiment's diff opened from the chart (its hover asks the daemon for it).
// The figures are printed (copied into tests/bench/VSCODE_RESULTS.md); the assertions keep a margin
// for a busy machine over the targets (first render under 1 s, no frame gap over 100 ms). The first
// render is measured twice: by this test (the click sent to the plot seen by Playwright's polling
// of the frame, which adds its own delay) and in the page (the click's event to the frame after
// the plot was drawn, on the browser's clock: chartClickToPaintedMs), with the steps between.
// AUTORESEARCH_E2E_BASELINE=1 (a one-off): first an empty webview panel opened the same way
// (fixtures/baseline-webview: VS Code's own share), closed, then the chart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, packageVsix, screenshot, viewPane, waitFor, webviewFrame } from '../harness.mjs';
import { python, showResults, VIEW, waitForState, withAutoresearch } from '../autoresearch.mjs';

const N = 100_000;
const REPO = path.resolve(import.meta.dirname, '..', '..', '..');
// Margins over the targets for a 2-core machine running other sessions (the old figures at
// 100,000: a 6-7 s first render, a 1.5-1.9 s freeze).
const FIRST_RENDER_LIMIT_MS = 5000;
const FRAME_GAP_LIMIT_MS = 500;
const BASELINE = process.env.AUTORESEARCH_E2E_BASELINE === '1';

function benchSession() {
  const base = makeTempDir('ar-e2e-large-');
  const code = [
    'import sys', 'from pathlib import Path', `sys.path.insert(0, ${JSON.stringify(path.join(REPO, 'tests', 'bench'))})`,
    'from scale import session_repo', `print(session_repo(Path(${JSON.stringify(base)}), ${N}))`,
  ].join('\n');
  const run = spawnSync(python(), ['-c', code], { encoding: 'utf-8', timeout: 600_000 });
  assert.equal(run.status, 0, `the benchmark's generator failed: ${run.stderr}`);
  return run.stdout.trim();
}

/** A requestAnimationFrame heartbeat in the workbench page: the longest gap since the last mark. */
async function startHeartbeat(page) {
  await page.evaluate(() => {
    const beat = { last: performance.now(), max: 0, gaps: [], click: 0 };
    window.__arBeat = beat;
    // When the click happened, on the page's clock (epoch ms), and the gaps over two frames.
    window.addEventListener('pointerdown', (e) => { beat.click = performance.timeOrigin + e.timeStamp; }, true);
    const tick = (t) => {
      beat.max = Math.max(beat.max, t - beat.last);
      if (t - beat.last > 34) beat.gaps.push({ end: performance.timeOrigin + t, ms: Math.round(t - beat.last) });
      beat.last = t;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}
const markBeat = (page) => page.evaluate(() => { Object.assign(window.__arBeat, { max: 0, last: performance.now(), gaps: [] }); });

/** A webview's steps after the click (ms): its frames' starts, the page written, its own marks
 * (body[data-timing]: script, data, drawn, painted), and the workbench's frame gaps over 34 ms. */
async function webviewSteps(page, frame) {
  const beat = await page.evaluate(() => window.__arBeat);
  const after = (t) => Math.round(t - beat.click);
  const host = page.frameLocator('iframe.webview.ready').first().locator('body');
  const [hostOrigin, marks] = await host.evaluate(() => [performance.timeOrigin,
    performance.getEntriesByType('mark').map((m) => [m.name.replace('webview/index.html/', ''), m.startTime])]);
  const [origin, timing] = await frame.locator('body').evaluate((b) => [performance.timeOrigin, JSON.parse(b.dataset.timing || '{}')]);
  const steps = { hostFrame: after(hostOrigin) };
  for (const [name, t] of marks) if (/^content\//.test(name)) steps[name.slice(8)] = after(hostOrigin + t);
  steps.pageFrame = after(origin);
  for (const [name, t] of Object.entries(timing)) steps[name] = after(origin + t);
  return { steps, gaps: beat.gaps.map((g) => [after(g.end), g.ms]) };
}

const maxGap = (page) => page.evaluate(() => Math.max(window.__arBeat.max, performance.now() - window.__arBeat.last));

/** The baseline extension, packaged (AUTORESEARCH_E2E_BASELINE=1 only). */
function baselineVsix() {
  const dir = makeTempDir('ar-e2e-baseline-ext-');
  fs.cpSync(path.join(import.meta.dirname, '..', 'fixtures', 'baseline-webview'), dir, { recursive: true });
  return packageVsix(dir);
}

/** Click the baseline's button (beside Show Chart), measure its empty panel, close it. */
async function measureBaseline(page, figures) {
  await markBeat(page);
  const button = page.locator('.part.sidebar a.action-label[aria-label^="Baseline Webview"]').first();
  await button.waitFor({ timeout: 10_000 });
  await button.click();
  const frame = webviewFrame(page);
  await frame.locator('body[data-timing*="painted"]').waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1000);
  figures.baselineMaxFrameGapMs = await maxGap(page);
  const { steps, gaps } = await webviewSteps(page, frame);
  figures.baselineClickToPaintedMs = steps.painted;
  console.log(`# baseline (an empty webview, opened as the chart is) steps after the click (ms): ${JSON.stringify(steps)}; frame gaps [after the click, ms]: ${JSON.stringify(gaps)}`);
  await page.locator('.tabs-container .tab', { hasText: 'Baseline' }).click({ button: 'middle' });
  await page.locator('iframe.webview').first().waitFor({ state: 'detached', timeout: 30_000 });
  await page.waitForTimeout(1000);
}

test('100,000 experiments: activated before the click, tree, a reduced chart without a freeze, a deep diff', { timeout: 600_000 }, async () => {
  const workspace = benchSession();
  const figures = {};
  const extraVsix = BASELINE ? [baselineVsix()] : [];
  await withAutoresearch('large-session', { workspace, timeoutMs: 540_000, extraVsix }, async ({ page, stateFile, logs }) => {
    // Nothing clicked yet: the session in the workspace activated the extension, and its daemon
    // started and read the session (the state holds it).
    await waitForState(stateFile, (s) => s.daemon === 'ready', { timeoutMs: 120_000, message: 'the daemon ready before the view is clicked' });
    const t0 = Date.now();
    await showResults(page);
    await viewPane(page, VIEW).locator('.monaco-list-row .label-name', { hasText: `#${N - 1}` }).first().waitFor({ timeout: 120_000 });
    figures.treeFirstRowsMs = Date.now() - t0;

    await startHeartbeat(page);
    await page.waitForTimeout(500);
    figures.idleGapMs = await maxGap(page);
    if (BASELINE) await measureBaseline(page, figures);
    await markBeat(page);
    // The view's own button (the palette's typing and filtering would be counted too).
    const button = page.locator('.part.sidebar a.action-label[aria-label^="Show Chart"]').first();
    await button.waitFor({ timeout: 10_000 });
    const t1 = Date.now();
    await button.click();
    const chart = webviewFrame(page);
    await page.locator('iframe.webview.ready').first().waitFor({ timeout: 60_000 });
    figures.chartWebviewMs = Date.now() - t1;
    await chart.locator('#summary').filter({ hasText: /^99,999 experiments/ }).waitFor({ timeout: 120_000 });
    await chart.locator('.u-over').waitFor({ timeout: 120_000 });
    figures.chartFirstRenderMs = Date.now() - t1;
    figures.webviewTimings = await chart.locator('body').getAttribute('data-timing');
    await page.waitForTimeout(1000); // any late work after the first render counts too
    figures.chartMaxFrameGapMs = await maxGap(page);
    const { steps, gaps } = await webviewSteps(page, chart);
    figures.chartClickToPaintedMs = steps.painted;
    console.log(`# chart steps after the click (ms): ${JSON.stringify(steps)}; frame gaps [after the click, ms]: ${JSON.stringify(gaps)}`);
    await waitForState(stateFile, (s) => s.chart.open && s.chart.reduced && s.chart.points === N, { message: 'the chart reduced, with every experiment' });
    const summary = await chart.locator('#summary').textContent();
    assert.match(summary, /a column per \d+ experiments/, summary);
    await screenshot(page, 'large-session-chart');

    // A deep experiment (a tenth of the way in): its hover is asked for on demand, its click opens
    // its diff.
    const over = chart.locator('.u-over');
    const box = await over.boundingBox();
    const at = { x: box.width * 0.1, y: box.height / 2 };
    await markBeat(page);
    const t2 = Date.now();
    await over.hover({ position: at, force: true });
    const tip = chart.locator('#tooltip[data-detail="1"]');
    await tip.waitFor({ timeout: 30_000 });
    figures.hoverDetailMs = Date.now() - t2;
    const number = Number(await tip.getAttribute('data-number'));
    const text = await tip.textContent();
    assert.match(text, new RegExp(`#${number} (keep|discard|crash) · score \\S+\\n\\S`), 'the experiment under the cursor, with its description');
    assert.ok(number > 1000 && number < N - 1000, `a deep experiment (#${number})`);
    const t3 = Date.now();
    await over.click({ position: at, force: true });
    await waitFor(async () => (await page.locator('.tabs-container .tab').allTextContents()).some((t) => new RegExp(`#${number}\\b`).test(t)),
      { timeoutMs: 60_000, message: async () => `the changes of #${number} (tabs: ${JSON.stringify(await page.locator('.tabs-container .tab').allTextContents())})` });
    figures.deepDiffMs = Date.now() - t3;
    figures.hoverClickMaxFrameGapMs = await maxGap(page);
    await screenshot(page, 'large-session-diff');

    // Closed and opened again: what each later opening costs (the first in a fresh browser
    // profile includes VS Code registering its webview service worker, up to 3 s on this box).
    await page.locator('.tabs-container .tab', { hasText: 'Autoresearch Chart' }).click({ button: 'middle' });
    await page.locator('iframe.webview').first().waitFor({ state: 'detached', timeout: 30_000 });
    await page.waitForTimeout(1000);
    await markBeat(page);
    await button.click();
    await chart.locator('#summary').filter({ hasText: /^99,999 experiments/ }).waitFor({ timeout: 120_000 });
    await chart.locator('body[data-timing*="painted"]').waitFor({ timeout: 120_000 });
    await page.waitForTimeout(1000);
    figures.reopenMaxFrameGapMs = await maxGap(page);
    const reopened = await webviewSteps(page, chart);
    figures.reopenClickToPaintedMs = reopened.steps.painted;
    console.log(`# chart reopened, steps after the click (ms): ${JSON.stringify(reopened.steps)}; frame gaps [after the click, ms]: ${JSON.stringify(reopened.gaps)}`);
    // The daemon's share of the first render, as the extension logged it.
    console.log(`# ${logs('Autoresearch').split('\n').filter((l) => / chart: /.test(l)).join('\n# ')}`);
  });
  console.log(`# large-session figures (ms): ${JSON.stringify(figures)}`);
  assert.ok(figures.chartFirstRenderMs < FIRST_RENDER_LIMIT_MS, `the chart's first render took ${figures.chartFirstRenderMs} ms`);
  assert.ok(figures.chartMaxFrameGapMs < FRAME_GAP_LIMIT_MS, `a ${figures.chartMaxFrameGapMs} ms frame gap while the chart opened`);
});
