// Start Loop from the palette on a repository without autoresearch.toml: the wizard is answered
// through the UI (metric named, lower is better, sweep agent, 3 experiments); the results tree
// fills with the baseline and the 3 experiments, each with its status icon, and results.tsv on
// disk says the same (commit, status, metric) as the tree (rows and their tooltips).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { answerInput, runCommand, screenshot, treeRow, waitFor, waitForPrompt } from '../harness.mjs';
import {
  acceptInput, experimentRows, formatMetric, makeDemoRepo, pickStep, readResults, showResults, STATUS_ICON, VIEW,
  waitForExperiments, waitForState, withAutoresearch,
} from '../autoresearch.mjs';

test('start loop: wizard through the UI, tree and results.tsv agree', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo({ toml: false });
  await withAutoresearch('start-loop', { workspace }, async ({ page, stateFile }) => {
    await showResults(page);
    await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });

    await runCommand(page, 'Autoresearch: Start Loop');
    // detect could not infer the metric's name (evaluate.py prints it): the wizard says so.
    await answerInput(page, 'val_loss', { prompt: /metric's name.*not detected/ });
    await pickStep(page, 'Lower is better', /lower or a higher val_loss better/);
    await acceptInput(page, /command that runs one experiment/); // detected: python3 train.py
    // The detected regex was built for the placeholder name: the renamed metric is carried into it.
    await waitForPrompt(page, /How to read val_loss/);
    assert.match(await page.locator('.quick-input-widget .quick-input-box input').inputValue(), /val_loss/);
    await acceptInput(page, /How to read val_loss/);
    // The scope: train.py (the script the command runs) preselected, evaluate.py offered too.
    await waitForPrompt(page, /Files the agent may edit/);
    const scope = await waitFor(async () => {
      const rows = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').evaluateAll((els) => els.map((r) => ({
        label: (r.querySelector('.label-name')?.textContent || '').trim(),
        checked: r.getAttribute('aria-checked') === 'true' || !!r.querySelector('input[type=checkbox]')?.checked,
      })));
      return rows.length >= 2 && rows;
    }, { message: 'the scope multi-select' });
    assert.deepEqual(scope.filter((r) => r.checked).map((r) => r.label), ['train.py']);
    assert.ok(scope.some((r) => r.label === 'evaluate.py'));
    await acceptInput(page, /Files the agent may edit/);
    await acceptInput(page, /guard command/); // none
    await pickStep(page, 'Sweep', /Who makes the edits/);
    await answerInput(page, '3', { prompt: /How many experiments/ });

    // The tree: baseline + 3 experiments, newest first, each with its status's icon.
    await waitForExperiments(page, (ex) => ex.length === 4, { timeoutMs: 120_000 });
    const state = await waitForState(stateFile, (s) => s.phase === 'stopped' && s.tree.items.length === 4,
      { timeoutMs: 60_000, message: 'the loop to stop after 3 experiments' });
    await screenshot(page, 'start-loop');

    const results = readResults(path.join(workspace, 'results.tsv'));
    assert.equal(results.length, 4, 'results.tsv: baseline + 3 experiments');
    assert.equal(results[0].description, 'baseline');
    const tree = experimentRows(await waitForExperiments(page, (ex) => ex.length === 4));
    assert.deepEqual(tree.map((r) => r.number), [3, 2, 1, 0], 'newest first');
    for (const [i, row] of results.entries()) {
      const shown = tree.find((r) => r.number === i);
      assert.ok(shown, `#${i} in the tree`);
      const metric = row.status === 'crash' ? shown.metric : formatMetric(row.metric);
      assert.equal(shown.metric, metric, `#${i}: the metric of results.tsv`);
      assert.equal(shown.icon, STATUS_ICON[row.status], `#${i} (${row.status}): its status icon`);
      // The row leads with the change (results.tsv's description), the metric after it.
      assert.equal(shown.label, row.description ? `#${i} ${row.description}` : `#${i}`, `#${i}: its change first`);
    }
    // The dump says the same (icons by name, no codicon- prefix), and the loop's summary.
    assert.deepEqual(state.tree.items.map((r) => r.icon),
      [...results].reverse().map((r) => STATUS_ICON[r.status].replace('codicon-', '')));
    // The session row: best (lower is better, among keeps) and the experiments' counts (baseline aside).
    const counts = { keep: 0, discard: 0, crash: 0 };
    for (const r of results.slice(1)) counts[r.status]++;
    const kept = results.map((r, i) => ({ ...r, i })).filter((r) => r.status === 'keep');
    const best = kept.reduce((a, b) => (Number(b.metric) < Number(a.metric) ? b : a));
    const sessionRow = (await waitForExperiments(page, (ex) => ex.length === 4)).find((r) => r.label.startsWith('autoresearch/'));
    assert.equal(sessionRow.label, state.tree.session.label);
    assert.equal(sessionRow.description,
      `best ${formatMetric(best.metric)} (#${best.i}) · 3 experiments · ${counts.keep} keep · ${counts.discard} discard · ${counts.crash} crash`);
    // Each row's tooltip (hover) names its status and the commit results.tsv has.
    for (const [i, row] of results.entries()) {
      await treeRow(page, VIEW, new RegExp(`^#${i} `)).hover();
      const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: `#${i} · ${row.status}` }).first();
      await hover.waitFor({ state: 'visible', timeout: 10_000 });
      assert.ok((await hover.textContent()).includes(row.commit.slice(0, 7)), `#${i}: tooltip shows commit ${row.commit}`);
      await page.mouse.move(5, 500);
      await waitFor(async () => !(await hover.isVisible().catch(() => false)), { timeoutMs: 5000, message: 'the hover to close' }).catch(() => {});
    }

    // The files were locked in a .vscode/settings.json the extension made; unlocked, none is left.
    await waitFor(() => !fs.existsSync(path.join(workspace, '.vscode')), { message: 'no .vscode/ left after the loop' });

    // The wizard saved its answers.
    const toml = fs.readFileSync(path.join(workspace, 'autoresearch.toml'), 'utf8');
    assert.match(toml, /val_loss/);
    assert.doesNotMatch(toml, /kind\s*=\s*"(?!sweep)/, 'the sweep agent (the default kind) saved');
    // The sweep agent's edits: one constant each, described as NAME old -> new.
    for (const r of results.slice(1)) if (r.status !== 'crash') assert.match(r.description, /^[A-Z_]+ \S+ -> \S+/);
    await screenshot(page, 'start-loop-tooltip');
  });
});
