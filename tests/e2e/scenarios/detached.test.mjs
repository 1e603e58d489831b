// The loop outlives the editor: Start Loop from the palette, then code-server stops (the browser
// and the server, as when the laptop closes or SSH drops for good) while the loop runs on in its
// own process and records experiments with no window open. code-server started again: the tree
// shows the experiments recorded meanwhile, train.py is locked again, and Stop works (the loop
// ends, the files unlock, results.tsv and the tree agree). A manual loop: paused until a window
// resumes it (the second test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { answerInput, runCommand, screenshot, waitFor } from '../harness.mjs';
import {
  experimentRows, makeDemoRepo, pickStep, readResults, showResults, stepTimer, waitForExperiments, waitForState,
  withAutoresearch,
} from '../autoresearch.mjs';

const ACTIVE = ['baseline', 'editing', 'committing', 'running', 'measuring', 'deciding'];
const alive = (pid) => { try { process.kill(pid, 0); return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'); } catch { return false; } };

test('detached loop: code-server stopped and started again, the loop ran on', { timeout: 420_000 }, async () => {
  const workspace = makeDemoRepo();
  const results = path.join(workspace, 'results.tsv');
  const rows = () => (fs.existsSync(results) ? readResults(results).length : 0);
  // The loop's pid, as its lock file names it ("pid N, autoresearch run --detach, since ...").
  const loopPid = () => Number(/pid (\d+)/.exec(fs.readFileSync(path.join(workspace, '.autoresearch', 'loop.lock'), 'utf8'))?.[1] || 0);
  const mark = stepTimer('detached');
  let pid = 0;
  try {
    await withAutoresearch('detached-first', { workspace, spare: () => [pid] }, async ({ page, stateFile }) => {
      await showResults(page);
      await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });
      await runCommand(page, 'Autoresearch: Start Loop');
      await pickStep(page, 'Start with autoresearch.toml', /How to start/);
      await answerInput(page, '', { prompt: /How many experiments/ }); // until stopped
      await waitForExperiments(page, (ex) => ex.length >= 2, { timeoutMs: 120_000 });
      await waitForState(stateFile, (s) => s.locks.locked.includes('train.py'), { message: 'train.py locked' });
      pid = loopPid();
      assert.ok(pid && alive(pid), 'the loop holds the lock in a process of its own');
      mark('loop running, first window');
    });
    // code-server, its extension host, the daemon and the browser are gone: the loop is not.
    assert.ok(alive(pid), 'the loop outlived code-server');
    const left = rows();
    await waitFor(() => rows() >= left + 3, { timeoutMs: 120_000, message: 'three experiments recorded with no window open' });
    const meanwhile = readResults(results).length;
    mark('recorded with no window');

    await withAutoresearch('detached-second', { workspace }, async ({ page, stateFile }) => {
      await showResults(page);
      await waitForState(stateFile, (s) => s.daemon === 'ready' && ACTIVE.includes(s.phase),
        { message: 'the live loop shown again' });
      // Every experiment recorded while no one watched is in the tree.
      const shown = experimentRows(await waitForExperiments(page, (ex) => ex.length >= meanwhile, { timeoutMs: 60_000 }));
      for (let n = left; n < meanwhile; n++) assert.ok(shown.some((r) => r.number === n), `#${n} (recorded meanwhile) in the tree`);
      await waitForState(stateFile, (s) => s.locks.locked.includes('train.py'), { message: 'train.py locked again' });
      await screenshot(page, 'detached-reattached');
      mark('second window attached');

      await runCommand(page, 'Autoresearch: Stop Loop');
      await waitForState(stateFile, (s) => s.phase === 'stopped' && s.locks.locked.length === 0,
        { timeoutMs: 90_000, message: 'the loop stopped and unlocked' });
      // Locked by two windows, the first one gone while locked: the setting is the user's again
      // (unset, as before the loop), and the settings file made for the locks is gone.
      await waitForState(stateFile, (s) => s.locks.readonlyInclude === null, { message: 'files.readonlyInclude unset again' });
      await waitFor(() => !fs.existsSync(path.join(workspace, '.vscode', 'settings.json')),
        { timeoutMs: 30_000, message: 'the .vscode/settings.json made for the locks removed' });
      await waitFor(() => !alive(pid), { timeoutMs: 30_000, message: 'the detached loop process to end' });
      const final = readResults(results);
      const tree = experimentRows(await waitForExperiments(page, (ex) => ex.length === final.length, { timeoutMs: 30_000 }));
      assert.deepEqual(tree.map((r) => r.number).sort((a, b) => a - b), final.map((_, i) => i), 'the tree has every row of results.tsv');
      mark('stopped');
    });
  } finally {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL'); // a failure leaves no loop behind
  }
});

// A manual loop outlives the editor too, paused: code-server stops while the loop waits for the
// user's edit (typed in the file meanwhile); the loop pauses and waits, the edit untouched. Started
// again: the tree says Paused, Resume gives the user their turn back, Run Experiment records the
// edit with its description, Stop ends the loop.
test('detached manual loop: paused while no window is open, resumed by the next one', { timeout: 420_000 }, async () => {
  const workspace = makeDemoRepo({ tomlEdit: (t) => t.replace(/kind = "sweep"\nseed = 7/, 'kind = "manual"') });
  assert.match(fs.readFileSync(path.join(workspace, 'autoresearch.toml'), 'utf8'), /kind = "manual"/);
  const trainPy = path.join(workspace, 'train.py');
  const results = path.join(workspace, 'results.tsv');
  const loopPid = () => Number(/pid (\d+)/.exec(fs.readFileSync(path.join(workspace, '.autoresearch', 'loop.lock'), 'utf8'))?.[1] || 0);
  const DESCRIPTION = 'LEARNING_RATE 0.02, while no window was open';
  const mark = stepTimer('detached-manual');
  let pid = 0;
  let edited = '';
  try {
    await withAutoresearch('detached-manual-first', { workspace, spare: () => [pid] }, async ({ page, stateFile }) => {
      await showResults(page);
      await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });
      await runCommand(page, 'Autoresearch: Start Loop');
      await pickStep(page, 'Start with autoresearch.toml', /How to start/);
      await answerInput(page, '', { prompt: /How many experiments/ });
      await waitForState(stateFile, (s) => s.phase === 'editing' && s.locks.locked.length === 0,
        { timeoutMs: 60_000, message: 'the loop waiting for the edit' });
      pid = loopPid();
      assert.ok(pid && alive(pid), 'the manual loop holds the lock in a process of its own');
      mark('waiting for the edit, first window');
    });
    assert.ok(alive(pid), 'the manual loop outlived code-server');
    // The user's edit, made while no window is open.
    edited = fs.readFileSync(trainPy, 'utf8').replace(/^LEARNING_RATE = .*$/m, 'LEARNING_RATE = 0.02');
    fs.writeFileSync(trainPy, edited);
    await waitFor(() => /no editor is attached: the manual loop pauses/.test(fs.readFileSync(path.join(workspace, '.autoresearch', 'daemon.log'), 'utf8')),
      { timeoutMs: 30_000, message: 'the loop pausing with no window open' });
    assert.equal(readResults(results).length, 1, 'the baseline only: nothing ran without the user');

    await withAutoresearch('detached-manual-second', { workspace }, async ({ page, stateFile }) => {
      await showResults(page);
      await waitForState(stateFile, (s) => s.daemon === 'ready' && s.phase === 'paused', { message: 'the paused loop shown' });
      assert.equal(fs.readFileSync(trainPy, 'utf8'), edited, 'the edit untouched');
      await waitForExperiments(page, (ex) => ex.length === 1 && ex[0].number === 0, { timeoutMs: 30_000 });
      await screenshot(page, 'detached-manual-paused');
      await runCommand(page, 'Autoresearch: Resume Loop');
      await waitForState(stateFile, (s) => s.phase === 'editing', { message: 'the loop waiting for the edit again' });
      assert.equal(fs.readFileSync(trainPy, 'utf8'), edited, 'the edit untouched by Resume');
      await runCommand(page, 'Autoresearch: Run Experiment');
      await answerInput(page, DESCRIPTION, { prompt: /What did you change/ });
      await waitForExperiments(page, (ex) => ex.some((r) => r.number === 1), { timeoutMs: 60_000 });
      const rows = readResults(results);
      assert.equal(rows.length, 2, 'results.tsv: baseline + the edit');
      assert.equal(rows[1].description, DESCRIPTION);
      mark('resumed and ran the edit');
      await waitForState(stateFile, (s) => s.phase === 'editing', { timeoutMs: 30_000, message: 'the loop waiting for the next edit' });
      await runCommand(page, 'Autoresearch: Stop Loop');
      await waitForState(stateFile, (s) => s.phase === 'stopped' && s.locks.locked.length === 0,
        { timeoutMs: 30_000, message: 'the loop stopped and unlocked' });
      await waitFor(() => !alive(pid), { timeoutMs: 30_000, message: 'the detached loop process to end' });
      mark('stopped');
    });
  } finally {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL'); // a failure leaves no loop behind
  }
});
