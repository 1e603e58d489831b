// The daemon dies (SIGKILL, found by its command line among the session's processes): the
// extension says so in the results view, starts a new daemon, and the tree comes back with the
// same experiments; the new daemon answers (a file's diff opens through it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editorText, screenshot, sessionProcesses, treeRow, waitFor, waitForTree } from '../harness.mjs';
import {
  cli, experimentRows, makeDemoRepo, showResults, stepTimer, VIEW, viewMessage, waitForExperiments, waitForState,
  withAutoresearch,
} from '../autoresearch.mjs';

const daemons = (session) => sessionProcesses(session).filter((p) => / -m autoresearch serve\b/.test(p.cmd));

test('daemon killed: the extension restarts it and the tree comes back', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo();
  cli(workspace, 'run', '--loop', '2'); // a session to show: baseline + 2 experiments
  const mark = stepTimer('daemon-restart');

  await withAutoresearch('daemon-restart', { workspace }, async ({ page, profile, stateFile }) => {
    await showResults(page);
    const before = experimentRows(await waitForExperiments(page, (ex) => ex.length === 3));
    const [daemon] = await waitFor(() => { const d = daemons(profile.root); return d.length === 1 && d; },
      { message: () => `one daemon process (found: ${JSON.stringify(daemons(profile.root))})` });
    mark('tree shown');

    process.kill(daemon.pid, 'SIGKILL');
    // The view says what happened (for the back-off's second at least), then a new daemon serves it.
    await waitFor(async () => /daemon exited; restarting/.test(await viewMessage(page)),
      { timeoutMs: 10_000, intervalMs: 50, message: 'the view to say the daemon exited' });
    await screenshot(page, 'daemon-restart-exited');
    const [next] = await waitFor(() => {
      const d = daemons(profile.root);
      return d.length === 1 && d[0].pid !== daemon.pid && d;
    }, { message: () => `a new daemon (found: ${JSON.stringify(daemons(profile.root))})` });
    await waitForState(stateFile, (s) => s.daemon === 'ready' && s.tree.items.length === 3,
      { message: 'the daemon ready again with the tree' });
    const after = experimentRows(await waitForExperiments(page, (ex) => ex.length === 3));
    assert.deepEqual(after.map((r) => [r.label, r.icon]), before.map((r) => [r.label, r.icon]), 'the same experiments');
    assert.equal(await viewMessage(page), '', 'no "daemon exited" message left in the view');
    mark('restarted');
    await screenshot(page, 'daemon-restart');

    // The new daemon answers: expand #1 and open its file's diff (fileAt through the new process).
    await treeRow(page, VIEW, /^#1 /).click();
    await waitForTree(page, VIEW, (items) => items.some((r) => r.label === 'train.py'));
    await treeRow(page, VIEW, 'train.py').click();
    await waitFor(async () => (await editorText(page, { side: 'modified' })).includes('def train()'), { message: 'the diff served by the new daemon' });
    assert.deepEqual(daemons(profile.root).map((p) => p.pid), [next.pid], 'still the one new daemon');
    mark('diff opened');
  });
});
