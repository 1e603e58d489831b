// Manual mode and Pause / Resume, from the palette.
// 1. `[agent] kind = "manual"`: after the baseline the loop waits for the user's edit; train.py is
//    writable then (typed and saved in the editor), Run Experiment (with a description) commits
//    and runs it, train.py is read-only while it runs, the experiment appears in the tree and in
//    results.tsv with that description; Stop → writable, .vscode/settings.json byte for byte.
// 2. A sweep loop paused from the palette: the status bar says Paused, Resume (not Pause) is
//    offered, no experiment is recorded while paused; Resume → new rows; Stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { answerInput, openFile, runCommand, screenshot, treeItems, waitFor } from '../harness.mjs';
import {
  experimentRows, git, makeDemoRepo, paletteCommands, pickStep, readResults, readState, showResults, statusItem,
  stepTimer, STATUS_ICON, VIEW, waitForExperiments, waitForState, waitForSteadyState, withAutoresearch,
} from '../autoresearch.mjs';

const SETTINGS = `{
  // the user's own settings
  "editor.tabSize": 3
}
`;
const ACTIVE_TAB = '.tabs-container .tab.active';
// The editor draws spaces as no-break spaces.
const activeText = async (page) => (await page.locator('.editor-group-container.active .monaco-editor .view-lines').first().innerText()).replace(/\u00a0/g, ' ');
/** The active tab's accessible label: VS Code appends "Read-only" while files.readonlyInclude holds it. */
const tabLabel = (page) => page.locator(`${ACTIVE_TAB} .monaco-icon-label`).first().getAttribute('aria-label').catch(() => '');
const RUNNING = ['committing', 'running', 'measuring', 'guarding', 'deciding'];
/** The dump's recorded experiments (the tree's rows without the one being made). */
const recorded = (s) => s.tree.items.filter((i) => i.contextValue !== 'autoresearch.running');

async function waitForWritable(page, writable, what) {
  let label = '';
  await waitFor(async () => { label = (await tabLabel(page)) || ''; return /Read-only/i.test(label) !== writable; },
    { message: () => `train.py's tab ${writable ? 'writable' : 'read-only'} ${what} (tab: ${JSON.stringify(label)})` });
}

/** Replace the editor line that starts with `start` by `text` (click on it, select it, type). */
async function replaceLine(page, start, text) {
  const line = page.locator('.editor-group-container.active .monaco-editor .view-line').filter({ hasText: new RegExp(`^${start.replace(/ /g, '\\s')}`) }).first();
  await line.click();
  await page.keyboard.press('End');
  await page.keyboard.press('Shift+Home');
  await page.keyboard.type(text);
}

test('manual: edit while the loop waits, Run Experiment, read-only while it runs, Stop', { timeout: 240_000 }, async () => {
  // Each run sleeps a little: time to see train.py read-only while the experiment runs.
  const workspace = makeDemoRepo({
    tomlEdit: (t) => t.replace('command = "python3 train.py"', 'command = "sleep 3 && python3 train.py"')
      .replace(/kind = "sweep"\nseed = 7/, 'kind = "manual"'),
    files: { '.gitignore': '.vscode/\n' },
  });
  assert.match(fs.readFileSync(path.join(workspace, 'autoresearch.toml'), 'utf8'), /kind = "manual"/);
  const settingsFile = path.join(workspace, '.vscode', 'settings.json');
  fs.mkdirSync(path.dirname(settingsFile));
  fs.writeFileSync(settingsFile, SETTINGS);
  const trainPy = path.join(workspace, 'train.py');
  const DESCRIPTION = 'LEARNING_RATE 0.02, by hand';
  const mark = stepTimer('manual');

  await withAutoresearch('manual', { workspace }, async ({ page, stateFile }) => {
    mark('launched');
    await showResults(page);
    await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });
    await openFile(page, 'train.py');

    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '', { prompt: /How many experiments/ }); // until stopped
    mark('started');

    // After the baseline (train.py locked while it runs: see locks) the loop waits for the user's edit: train.py unlocked, Run Experiment offered.
    const editing = await waitForState(stateFile, (s) => s.phase === 'editing' && s.locks.locked.length === 0 &&
      !s.locks.readonlyInclude?.['train.py'] && recorded(s).length === 1,
    { timeoutMs: 60_000, message: 'the loop waiting for an edit, train.py unlocked' });
    assert.equal(recorded(editing)[0].icon, STATUS_ICON.keep.replace('codicon-', ''), 'the baseline kept');
    mark('editing');
    // The view and the status bar say that the loop waits for the user, and what to do.
    const tree = await waitForExperiments(page, (ex, all) => ex.length === 1 && ex[0].number === 0 &&
      all.some((r) => r.label === '#1 waiting for your edit'));
    const making = tree.find((r) => r.label === '#1 waiting for your edit');
    assert.equal(making.icon, 'codicon-edit');
    assert.match(making.description, /Run Experiment/);
    const waiting = await waitFor(async () => { const s = await statusItem(page, 'loop'); return /Your edit #1/.test(s?.text) && s; },
      { message: 'the status bar: Your edit #1' });
    assert.ok(waiting.icons.includes('codicon-edit'), `the edit icon in the status bar (${waiting.icons})`);
    await waitForWritable(page, true, 'while the loop waits for the edit');
    await paletteCommands(page, 'Autoresearch: ', (l) => l.includes('Autoresearch: Run Experiment'));

    // The user's edit: typed in the editor and saved.
    await replaceLine(page, 'LEARNING_RATE = ', 'LEARNING_RATE = 0.02');
    await waitFor(async () => (await activeText(page)).includes('LEARNING_RATE = 0.02'), { message: 'the edit in the editor' });
    await page.locator(`${ACTIVE_TAB}.dirty`).waitFor({ timeout: 10_000 });
    await page.keyboard.press('Control+S');
    await waitFor(() => fs.readFileSync(trainPy, 'utf8').includes('LEARNING_RATE = 0.02\n'), { message: 'the edit saved to disk' });
    await waitFor(async () => (await page.locator(`${ACTIVE_TAB}.dirty`).count()) === 0, { message: 'the tab clean after saving' });
    await screenshot(page, 'manual-1-edit-saved');
    mark('edit saved');

    // Run Experiment: the description asked, the experiment runs with train.py read-only.
    await runCommand(page, 'Autoresearch: Run Experiment');
    await answerInput(page, DESCRIPTION, { prompt: /What did you change/ });
    const running = await waitForState(stateFile, (s) => RUNNING.includes(s.phase) && s.locks.locked.includes('train.py'),
      { timeoutMs: 10_000, intervalMs: 50, message: 'the experiment running, train.py locked' });
    mark(`running (${running.phase})`);
    await waitForWritable(page, false, 'while the experiment runs');
    const typed = page.locator('.editor-group-container.active .monaco-editor .view-lines').first();
    await typed.click({ position: { x: 5, y: 5 } });
    await page.keyboard.type('zzz');
    await page.locator('.monaco-editor-overlaymessage').filter({ hasText: /read-?only/i }).first()
      .waitFor({ state: 'visible', timeout: 10_000 });
    assert.ok(!(await activeText(page)).includes('zzz'), 'typing refused while the experiment runs');
    assert.equal(await page.locator(`${ACTIVE_TAB}.dirty`).count(), 0, 'the editor is not dirty');
    assert.ok(RUNNING.includes(readState(stateFile).phase), `still running when the typing was refused (phase ${readState(stateFile).phase})`);
    const busy = await statusItem(page, 'loop');
    assert.match(busy.text, /#1/, `the status bar names experiment #1 (${busy.text})`);
    await screenshot(page, 'manual-2-running-read-only');
    mark('typing refused');

    // Recorded: #1 in the tree with the description, the same in results.tsv; the loop waits again.
    const rows = await waitForExperiments(page, (ex) => ex.some((r) => r.number === 1), { timeoutMs: 60_000 });
    const row = experimentRows(rows).find((r) => r.number === 1);
    assert.equal(row.change, DESCRIPTION, `#1's description leads its row: ${row.label}`);
    const again = await waitForState(stateFile, (s) => s.phase === 'editing' && s.locks.locked.length === 0 && recorded(s).length === 2,
      { timeoutMs: 30_000, message: 'the loop waiting for the next edit' });
    const results = readResults(path.join(workspace, 'results.tsv'));
    assert.equal(results.length, 2, 'results.tsv: baseline + 1');
    assert.equal(results[1].description, DESCRIPTION);
    assert.equal(row.icon, STATUS_ICON[results[1].status], `#1 (${results[1].status}): its icon`);
    assert.match(git(workspace, 'show', `${results[1].commit}:train.py`), /^LEARNING_RATE = 0\.02$/m, 'the commit holds the edit');
    // Kept: the edit stays; discarded: train.py back as it was, in the editor too.
    const expected = results[1].status === 'keep' ? 'LEARNING_RATE = 0.02' : 'LEARNING_RATE = 0.01';
    assert.ok(fs.readFileSync(trainPy, 'utf8').includes(`${expected}\n`), `train.py after a ${results[1].status}`);
    await waitFor(async () => (await activeText(page)).includes(expected), { message: `the editor shows ${expected}` });
    assert.equal(recorded(again)[0].label.split(' ')[0], '#1');
    assert.equal(again.tree.items[0].label, '#2 waiting for your edit', 'the next experiment waits for its edit');
    await waitForWritable(page, true, 'in the next edit phase');
    await waitFor(async () => /Your edit #2/.test((await statusItem(page, 'loop'))?.text), { message: 'the status bar: Your edit #2' });
    await page.keyboard.press('Escape'); // the editor's read-only message from before
    await screenshot(page, 'manual-3-recorded');
    mark(`#1 recorded (${results[1].status})`);

    // Stop while the loop waits: it stops at once; writable, settings as they were. (The daemon
    // locks the scope once more as the cancelled edit step returns, then unlocks as the loop
    // ends: hence waiting for the unlocked state to last, not for its first dump.)
    await runCommand(page, 'Autoresearch: Stop Loop');
    await waitForSteadyState(stateFile, (s) => s.phase === 'stopped' && s.locks.locked.length === 0 &&
      !s.locks.readonlyInclude?.['train.py'], { timeoutMs: 20_000, message: 'the loop stopped, train.py unlocked' });
    await waitFor(() => fs.readFileSync(settingsFile, 'utf8') === SETTINGS,
      { message: () => `.vscode/settings.json back to what it was (now: ${JSON.stringify(fs.readFileSync(settingsFile, 'utf8'))})` });
    assert.equal(readResults(path.join(workspace, 'results.tsv')).length, 2, 'no experiment recorded by Stop');
    mark('stopped');
    await waitForWritable(page, true, 'after Stop');
    await replaceLine(page, 'HIDDEN = ', 'HIDDEN = 9');
    await waitFor(async () => (await activeText(page)).includes('HIDDEN = 9'), { message: 'typed after Stop' });
    await page.locator(`${ACTIVE_TAB}.dirty`).waitFor({ timeout: 10_000 });
    await screenshot(page, 'manual-4-stopped');
    await runCommand(page, 'File: Revert File');
    await waitFor(async () => !(await activeText(page)).includes('HIDDEN = 9'), { message: 'the edit reverted' });
    mark('done');
  });
});

test('pause / resume: a sweep loop paused from the palette records nothing until resumed', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo({
    tomlEdit: (t) => t.replace('command = "python3 train.py"', 'command = "sleep 1 && python3 train.py"'),
  });
  const tsv = path.join(workspace, 'results.tsv');
  const mark = stepTimer('pause');

  await withAutoresearch('pause', { workspace }, async ({ page, stateFile }) => {
    await showResults(page);
    await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });
    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '', { prompt: /How many experiments/ });
    await waitForExperiments(page, (ex) => ex.some((r) => r.number === 1), { timeoutMs: 60_000 });
    mark('#1 recorded');

    await runCommand(page, 'Autoresearch: Pause Loop');
    // The experiment under way finishes, then the loop pauses.
    const paused = await waitForState(stateFile, (s) => s.phase === 'paused', { timeoutMs: 30_000, message: 'the loop paused' });
    const n = recorded(paused).length;
    assert.equal(paused.tree.items.length, n, 'no row in the making while paused');
    mark(`paused after ${n} rows`);
    const bar = await waitFor(async () => { const s = await statusItem(page, 'loop'); return /Paused/.test(s?.text) && s; },
      { message: 'the status bar: Paused' });
    assert.ok(bar.icons.includes('codicon-debug-pause'), `the pause icon in the status bar (${bar.icons})`);
    // The tree: no spinner row while paused, the recorded experiments only.
    const shown = await waitForExperiments(page, (ex, all) => ex.length === n && !all.some((r) => r.icon === 'codicon-loading'));
    assert.equal(experimentRows(shown).length, n);
    // The palette offers Resume, not Pause.
    const offered = await paletteCommands(page, 'Autoresearch: ', (l) => l.includes('Autoresearch: Resume Loop'));
    assert.ok(!offered.includes('Autoresearch: Pause Loop'), `Pause not offered while paused: ${JSON.stringify(offered)}`);
    assert.ok(offered.includes('Autoresearch: Stop Loop'), 'Stop offered while paused');
    await screenshot(page, 'pause-1-paused');
    // Nothing recorded for 3 s.
    await new Promise((r) => setTimeout(r, 3000));
    const still = readState(stateFile);
    assert.equal(still.phase, 'paused', 'still paused');
    assert.equal(recorded(still).length, n, 'no experiment recorded while paused');
    assert.equal(readResults(tsv).length, n, 'results.tsv: no new row while paused');
    assert.equal(experimentRows(await treeItems(page, VIEW)).length, n, 'the tree: no new row while paused');
    mark('nothing recorded while paused');

    await runCommand(page, 'Autoresearch: Resume Loop');
    await waitForState(stateFile, (s) => s.phase !== 'paused', { timeoutMs: 10_000, message: 'the loop resumed' });
    await waitFor(async () => !/Paused/.test((await statusItem(page, 'loop'))?.text), { message: 'the status bar no longer paused' });
    await waitForExperiments(page, (ex) => ex.length > n, { timeoutMs: 30_000 });
    mark('a new row after Resume');
    await screenshot(page, 'pause-2-resumed');

    await runCommand(page, 'Autoresearch: Stop Loop');
    const stopped = await waitForState(stateFile, (s) => s.phase === 'stopped', { timeoutMs: 30_000, message: 'the loop stopped' });
    const results = readResults(tsv);
    assert.ok(results.length > n, 'results.tsv grew after Resume');
    assert.equal(recorded(stopped).length, results.length, 'tree and results.tsv agree');
    await waitForExperiments(page, (ex) => ex.length === results.length);
    await screenshot(page, 'pause-3-stopped');
    mark('stopped');
  });
});
