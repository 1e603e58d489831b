// 100,000 experiments made by the benchmark's own generator (tests/bench/scale.py: real commits,
// results.tsv and experiments.jsonl as the loop leaves them), in the real VS Code (issue #21):
// - the extension activates when the workspace holds a session (workspaceContains), so the
//   daemon is ready before the view is clicked;
// - the tree's first rows after the click;
// - the chart drawn from the daemon's reduction (not 100,000 markers in one message): its first
//   render and the window's longest frame gap meanwhile, from a requestAnimationFrame heartbeat
//   in the workbench page;
// - a deep experiment's diff opened from the chart (its hover asks the daemon for it);
// - the chart closed and opened again in the same window;
// - the window reloaded (a new window, as every later day's: the browser already holds VS Code's
//   webview service worker), the tree and the chart again.
// The chart's first opening in this fresh browser profile is the profile's first webview: VS
// Code's webview host registers its service worker first. When the worker has already claimed
// the host frame by the time register() resolves, the host calls registration.update() on the
// worker it has just installed and waits for it: 0.6-2.8 s in most runs here, a few ms in others
// (the `sw/*` steps printed show which). That is once per browser profile and VS Code version,
// whatever the webview; the new window's figures are the ones a user sees every other time.
// The figures are printed (and kept in tests/bench/RESULTS.md by `make bench`); the assertions
// keep a margin for a busy machine over the targets (first render under 1 s, no frame gap over
// 100 ms). The first render is measured twice: by this test (the click sent to the plot seen by
// Playwright's polling of the frame, which adds its own delay) and in the page (the click's event
// to the frame after the plot was drawn, on the browser's clock: ...ClickToPaintedMs), with the
// steps between.
// AUTORESEARCH_E2E_BASELINE=1: VS Code's own share, an empty webview panel opened the same way
// (fixtures/baseline-webview): where the chart was reopened (beside the diff editor), and as a
// new window's first webview, before the new window's chart.
// AUTORESEARCH_E2E_FIGURES=file.json: the figures written there too (`make bench`:
// tests/bench/vscode.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, packageVsix, screenshot, viewPane, waitFor, webviewFrame } from '../harness.mjs';
import { python, readState, showResults, VIEW, waitForState, withAutoresearch } from '../autoresearch.mjs';

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
    // markBeat(page, true): the longest gap counts from the next click on (Playwright's moves to
    // the button before it are not the opening's); a gap under way at the click counts whole.
    window.addEventListener('pointerdown', (e) => {
      beat.click = performance.timeOrigin + e.timeStamp;
      if (beat.fromClick) Object.assign(beat, { max: 0, fromClick: false });
    }, true);
    const tick = (t) => {
      beat.max = Math.max(beat.max, t - beat.last);
      if (t - beat.last > 34) beat.gaps.push({ end: performance.timeOrigin + t, ms: Math.round(t - beat.last) });
      beat.last = t;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}
const markBeat = (page, fromClick = false) => page.evaluate((fromClick) => {
  Object.assign(window.__arBeat, { max: 0, last: performance.now(), gaps: [], fromClick });
}, fromClick);

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
  for (const [name, t] of marks) {
    if (/^content\//.test(name)) steps[name.slice(8)] = after(hostOrigin + t);
    else if (/^sw\//.test(name)) steps[name] = after(hostOrigin + t);
  }
  steps.pageFrame = after(origin);
  for (const [name, t] of Object.entries(timing)) steps[name] = after(origin + t);
  return { steps, gaps: beat.gaps.map((g) => [after(g.end), g.ms]) };
}

/** Marks in VS Code's webview host frame (sw/*): when it registered its service worker, whether the
 * worker already controlled the frame when register() resolved (VS Code then calls update() and
 * waits for it), and when that update ended. Only marks: nothing is changed. */
async function markWorkerSteps(context) {
  await context.addInitScript(() => {
    if (!location.pathname.includes('/webview/browser/pre/') || !navigator.serviceWorker) return;
    const mark = (name) => performance.mark(`sw/${name}`);
    const container = ServiceWorkerContainer.prototype;
    const registration = ServiceWorkerRegistration.prototype;
    const register = container.register;
    container.register = function (...args) {
      mark('register');
      return register.apply(this, args).then((r) => {
        mark(navigator.serviceWorker.controller ? 'registered, already controlled' : 'registered');
        return r;
      });
    };
    const update = registration.update;
    registration.update = function (...args) {
      mark('update');
      return update.apply(this, args).finally(() => mark('updated'));
    };
  });
}

/** Wait until the window is at rest (VS Code's own start-up work after a reload done): 2 s
 * without a frame gap over 50 ms, at most 30 s. Returns the last window's longest gap. */
async function settle(page) {
  const until = Date.now() + 30_000;
  let gap;
  do {
    await markBeat(page);
    await page.waitForTimeout(2000);
    gap = await maxGap(page);
  } while (gap > 50 && Date.now() < until);
  return gap;
}

const maxGap = (page) => page.evaluate(() => Math.max(window.__arBeat.max, performance.now() - window.__arBeat.last));

/** The baseline extension, packaged (AUTORESEARCH_E2E_BASELINE=1 only). */
function baselineVsix() {
  const dir = makeTempDir('ar-e2e-baseline-ext-');
  fs.cpSync(path.join(import.meta.dirname, '..', 'fixtures', 'baseline-webview'), dir, { recursive: true });
  return packageVsix(dir);
}

/** Click the baseline's button (beside Show Chart), measure its empty panel, close it. */
async function measureBaseline(page, figures, prefix = 'baseline', label = 'baseline (an empty webview, opened as the chart is)') {
  await markBeat(page, true);
  const button = page.locator('.part.sidebar a.action-label[aria-label^="Baseline Webview"]').first();
  await button.waitFor({ timeout: 10_000 });
  await button.click();
  const frame = webviewFrame(page);
  await frame.locator('body[data-timing*="painted"]').waitFor({ timeout: 60_000 });
  await page.waitForTimeout(1000);
  figures[`${prefix}MaxFrameGapMs`] = await maxGap(page);
  const { steps, gaps } = await webviewSteps(page, frame);
  figures[`${prefix}ClickToPaintedMs`] = steps.painted;
  console.log(`# ${label}, steps after the click (ms): ${JSON.stringify(steps)}; frame gaps [after the click, ms]: ${JSON.stringify(gaps)}`);
  await page.locator('.tabs-container .tab', { hasText: 'Baseline' }).click({ button: 'middle' });
  await page.locator('iframe.webview').first().waitFor({ state: 'detached', timeout: 30_000 });
  await page.waitForTimeout(1000);
}

/** Reload the page: a new window (workbench, extension host and daemon) in the same browser
 * profile. Then the new daemon ready, the tree's first rows (ms since then), the heartbeat, and
 * the window at rest. */
async function newWindow(page, stateFile) {
  const oldHost = readState(stateFile).host;
  await page.reload();
  await waitForState(stateFile, (s) => s.host !== oldHost && s.daemon === 'ready', { timeoutMs: 120_000, message: 'the new window\'s daemon ready' });
  const rows = await treeFirstRows(page);
  await startHeartbeat(page);
  await settle(page);
  return rows;
}

/** The tree shown from the activity bar, until its first rows: ms since the click. */
async function treeFirstRows(page) {
  const t0 = Date.now();
  await showResults(page);
  await viewPane(page, VIEW).locator('.monaco-list-row .label-name', { hasText: `#${N - 1}` }).first().waitFor({ timeout: 120_000 });
  return Date.now() - t0;
}

/** Click the view's Show Chart button (the palette's typing and filtering would be counted too)
 * and measure the chart's opening: `figures[prefix + ...]`. Returns the chart's frame. */
async function openChart(page, figures, prefix, label) {
  await markBeat(page, true);
  const button = page.locator('.part.sidebar a.action-label[aria-label^="Show Chart"]').first();
  await button.waitFor({ timeout: 10_000 });
  await button.click();
  const chart = webviewFrame(page);
  await page.locator('iframe.webview.ready').first().waitFor({ timeout: 60_000 });
  const webviewSeen = Date.now();
  await chart.locator('#summary').filter({ hasText: /^99,999 experiments/ }).waitFor({ timeout: 120_000 });
  await chart.locator('.u-over').waitFor({ timeout: 120_000 });
  const plotSeen = Date.now();
  await chart.locator('body[data-timing*="painted"]').waitFor({ timeout: 120_000 });
  await page.waitForTimeout(1000); // any late work after the first render counts too
  figures[`${prefix}MaxFrameGapMs`] = await maxGap(page);
  // From the click's event (the page's clock, in epoch ms like the test's): Playwright's own
  // click steps before it are left out, its polling of the frame after it is not.
  const click = await page.evaluate(() => window.__arBeat.click);
  figures[`${prefix}WebviewMs`] = Math.round(webviewSeen - click);
  figures[`${prefix}FirstRenderMs`] = Math.round(plotSeen - click);
  const { steps, gaps } = await webviewSteps(page, chart);
  figures[`${prefix}ClickToPaintedMs`] = steps.painted;
  console.log(`# ${label}, steps after the click (ms): ${JSON.stringify(steps)}; frame gaps [after the click, ms]: ${JSON.stringify(gaps)}`);
  return chart;
}

async function closeChart(page) {
  await page.locator('.tabs-container .tab', { hasText: 'Autoresearch Chart' }).click({ button: 'middle' });
  await page.locator('iframe.webview').first().waitFor({ state: 'detached', timeout: 30_000 });
  await page.waitForTimeout(1000);
}

test('100,000 experiments: activated before the click, tree, a reduced chart without a freeze, a deep diff', { timeout: 600_000 }, async () => {
  const workspace = benchSession();
  const figures = {};
  const extraVsix = BASELINE ? [baselineVsix()] : [];
  await withAutoresearch('large-session', { workspace, timeoutMs: 540_000, extraVsix }, async ({ page, stateFile, logs }) => {
    await markWorkerSteps(page.context());
    // Nothing clicked yet: the session in the workspace activated the extension, and its daemon
    // started and read the session (the state holds it).
    await waitForState(stateFile, (s) => s.daemon === 'ready', { timeoutMs: 120_000, message: 'the daemon ready before the view is clicked' });
    figures.treeFirstRowsMs = await treeFirstRows(page);

    await startHeartbeat(page);
    figures.idleGapMs = await settle(page);
    // The first webview in this browser profile (VS Code registers its service worker).
    const chart = await openChart(page, figures, 'chart', 'chart (the browser profile\'s first webview)');
    figures.webviewTimings = await chart.locator('body').getAttribute('data-timing');
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

    // Closed and opened again in the same window.
    await closeChart(page);
    await openChart(page, figures, 'reopen', 'chart reopened');
    await closeChart(page);
    // VS Code's empty webview where the chart was reopened: beside the diff editor just opened.
    if (BASELINE) await measureBaseline(page, figures, 'baselineBesideDiff', 'baseline beside the diff');
    // The daemon's share of the first render, as the extension logged it.
    console.log(`# ${logs('Autoresearch').split('\n').filter((l) => / chart: /.test(l)).join('\n# ')}`);

    // A new window (the page reloaded: a new workbench, extension host and daemon), in a browser
    // that has had a webview, as every window after the first one does. With BASELINE, first a
    // new window whose first webview is VS Code's empty one.
    if (BASELINE) {
      await newWindow(page, stateFile);
      await measureBaseline(page, figures);
    }
    figures.newWindowTreeFirstRowsMs = await newWindow(page, stateFile);
    const again = await openChart(page, figures, 'newWindow', 'chart in a new window');
    await waitForState(stateFile, (s) => s.chart.open && s.chart.reduced && s.chart.points === N, { message: 'the new window\'s chart reduced, with every experiment' });
    assert.match(await again.locator('#summary').textContent(), /^99,999 experiments/);
  });
  console.log(`# large-session figures (ms): ${JSON.stringify(figures)}`);
  if (process.env.AUTORESEARCH_E2E_FIGURES) fs.writeFileSync(process.env.AUTORESEARCH_E2E_FIGURES, JSON.stringify(figures));
  for (const prefix of ['chart', 'newWindow']) {
    assert.ok(figures[`${prefix}FirstRenderMs`] < FIRST_RENDER_LIMIT_MS, `${prefix}: the chart's first render took ${figures[`${prefix}FirstRenderMs`]} ms`);
    assert.ok(figures[`${prefix}MaxFrameGapMs`] < FRAME_GAP_LIMIT_MS, `${prefix}: a ${figures[`${prefix}MaxFrameGapMs`]} ms frame gap while the chart opened`);
  }
});
