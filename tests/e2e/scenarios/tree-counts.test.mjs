// One loop of 4 sweep experiments, seen at VS Code's default side bar width: each row leads with
// its change (results.tsv's description), not cut off; the tree's header, its tooltip, the chart
// and the stop notification give the same counts, those of results.tsv (the baseline is not an
// experiment); an experiment's tooltip measures its delta against the same best as the daemon's
// reason; the status bar shows the running experiment once (no second "$/progress" item); the
// .vscode/settings.json the locks create is kept out of git status and removed on Stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { answerInput, runCommand, screenshot, statusBarItems, treeRow, viewPane, waitFor, webviewFrame } from '../harness.mjs';
import {
  allNotifications, experimentRows, formatMetric, git, makeDemoRepo, pickStep, readResults, readState, showResults, VIEW,
  waitForExperiments, waitForState, withAutoresearch,
} from '../autoresearch.mjs';

async function hoverText(page, label, hasText) {
  await treeRow(page, VIEW, label).hover();
  const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText }).first();
  await hover.waitFor({ state: 'visible', timeout: 10_000 });
  const text = await hover.textContent();
  await page.mouse.move(5, 500);
  await waitFor(async () => !(await hover.isVisible().catch(() => false)), { timeoutMs: 5000, message: 'the hover to close' }).catch(() => {});
  return text;
}

test('default width: rows lead with the change; tree, tooltip, chart and notification count alike', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo(); // autoresearch.toml: sweep, seed 7
  await withAutoresearch('tree-counts', { workspace, defaultSidebar: true }, async ({ page, stateFile }) => {
    await showResults(page);
    await waitForState(stateFile, (s) => s.daemon === 'ready', { timeoutMs: 60_000 });
    const settingsFile = path.join(workspace, '.vscode', 'settings.json');
    const exclude = path.join(workspace, '.git', 'info', 'exclude');
    const excludeBefore = fs.readFileSync(exclude, 'utf8');
    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '4', { prompt: /How many experiments/ });
    // While it runs: the status bar's texts (the loop item only, no "Experiment #n: s of s"), and
    // git status (the .vscode/settings.json made for the locks is not shown as untracked).
    const texts = new Set();
    const untracked = new Set();
    let lockedChecks = 0;
    await waitFor(async () => {
      for (const item of await statusBarItems(page)) texts.add(item.text);
      const s = readState(stateFile);
      if (s?.locks.locked.length && fs.existsSync(settingsFile)) {
        lockedChecks += 1;
        // --no-optional-locks: never take index.lock under the loop's own git commands.
        const status = git(workspace, '--no-optional-locks', 'status', '--porcelain', '--untracked-files=all');
        if (status.includes('.vscode')) untracked.add(status);
      }
      return s?.phase === 'stopped';
    }, { timeoutMs: 150_000, intervalMs: 250, message: 'the loop to stop' });
    assert.ok(![...texts].some((t) => /\d+ s of \d+ s|^(Experiment #\d+|Baseline):/.test(t)), `one progress item: ${JSON.stringify([...texts])}`);
    assert.ok(lockedChecks > 0, 'git status seen while the locks were held');
    assert.deepEqual([...untracked], [], 'no untracked .vscode/ while the loop holds the locks');
    await waitFor(() => !fs.existsSync(path.join(workspace, '.vscode')) && fs.readFileSync(exclude, 'utf8') === excludeBefore,
      { message: 'after Stop: no .vscode/ and .git/info/exclude as it was' });

    const results = readResults(path.join(workspace, 'results.tsv'));
    assert.equal(results.length, 5);
    const counts = { keep: 0, discard: 0, crash: 0 };
    for (const r of results.slice(1)) counts[r.status]++;
    const text = `4 experiments · ${counts.keep} keep · ${counts.discard} discard · ${counts.crash} crash`;
    const kept = results.map((r, i) => ({ ...r, i })).filter((r) => r.status === 'keep');
    const best = kept.reduce((a, b) => (Number(b.metric) < Number(a.metric) ? b : a));
    const bestText = `best ${formatMetric(best.metric)} (#${best.i})`;

    // The stop notification.
    await waitFor(async () => (await allNotifications(page)).includes(`Autoresearch: the loop stopped after ${text}, best val_loss ${formatMetric(best.metric)} (#${best.i}).`),
      { message: async () => `the stop notification (shown: ${JSON.stringify(await allNotifications(page))})` });

    // The tree: its header and its tooltip.
    const rows = await waitForExperiments(page, (ex) => ex.length === results.length, { timeoutMs: 30_000 });
    const session = rows.find((r) => r.level === 1);
    assert.equal(session.description, `${bestText} · ${text}`);
    assert.ok((await hoverText(page, session.label, 'after the baseline')).includes(`${text} after the baseline`));

    // Each row: "#n <change>" first, the metric after it (what a narrow side bar cuts is the
    // metric, the delta and the memory); a change as short as "BATCH_SIZE 64 -> 248" in full.
    const pane = await viewPane(page, VIEW).boundingBox();
    assert.ok(pane.width < 400, `the default side bar width (${pane.width} px)`);
    let whole = 0;
    for (const row of experimentRows(rows)) {
      const r = results[row.number];
      assert.equal(row.label, `#${row.number} ${r.description}`);
      assert.equal(row.metric, r.status === 'crash' ? row.metric : formatMetric(r.metric));
      const box = await treeRow(page, VIEW, row.label).locator('.label-name').first().evaluate((el) => {
        const clip = el.closest('.monaco-icon-label-container') || el.parentElement;
        const description = clip.querySelector('.label-description');
        return { cut: el.getBoundingClientRect().right - clip.getBoundingClientRect().right,
          before: !description || el.getBoundingClientRect().left < description.getBoundingClientRect().left };
      });
      assert.ok(box.before, `#${row.number}: the change before the metric`);
      if (r.description.length <= 'BATCH_SIZE 64 -> 248'.length) {
        assert.ok(box.cut <= 1, `#${row.number}'s change "${r.description}" is not cut off (${box.cut} px over)`);
        whole += 1;
      }
    }
    assert.ok(whole >= 2, 'some short changes shown whole');
    await screenshot(page, 'tree-counts');

    // A discarded experiment's tooltip: one reference, the best before it, for the delta and the reason.
    const worse = results.map((r, i) => ({ ...r, i })).find((r) => r.status === 'discard');
    if (worse) {
      const tip = await hoverText(page, new RegExp(`^#${worse.i} `), `#${worse.i} · discard`);
      const reference = results.slice(0, worse.i).map((r, i) => ({ ...r, i })).filter((r) => r.status === 'keep').pop();
      const delta = formatMetric(Math.abs(Number(worse.metric) - Number(reference.metric)));
      assert.ok(tip.includes(`vs #${reference.i}, the best before it (${formatMetric(reference.metric)}): ${Number(worse.metric) > Number(reference.metric) ? '+' : '−'}${delta}`), tip);
      const reason = tip.match(/worse by (\S+)/);
      if (reason) assert.equal(formatMetric(Number(reason[1])), delta, 'the reason and the delta: the same number');
    }

    // The chart: the same counts and best.
    await runCommand(page, 'Autoresearch: Show Chart');
    const summary = await webviewFrame(page).locator('#summary').filter({ hasText: /^4 experiments/ }).textContent({ timeout: 30_000 });
    assert.match(summary, new RegExp(`^4 experiments · best val_loss ${formatMetric(best.metric).replace('.', '\\.')} ● ${counts.keep} keep● ${counts.discard} discard● ${counts.crash} crash`));
  });
});
