// First run where the user's shell puts a plain (not externally managed) Python first, as pyenv
// or conda do: Install must not put the daemon and its dependencies into that shared interpreter
// (its `pip freeze` stays the same) but into the private venv made with it. The venv is then
// reused by a restart without asking, and updated without asking when the bundled daemon changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCommand, screenshot, waitFor } from '../harness.mjs';
import {
  allNotifications, clickNotificationButton, globalStorage, importsAutoresearch, makeDemoRepo, showResults, stepTimer,
  waitForState, withAutoresearch,
} from '../autoresearch.mjs';

const OFFER = /^Autoresearch needs its daemon/;

/** The python3 the user's login shell finds (bash -ilc, as the server resolves it), if it is a plain one. */
function plainPython() {
  const r = spawnSync(process.env.SHELL || 'bash', ['-ilc', 'python3 -c "import sys, sysconfig, os; print(sys.executable); print(sys.prefix == sys.base_prefix and not os.path.exists(os.path.join(sysconfig.get_path(\'stdlib\'), \'EXTERNALLY-MANAGED\')))"'],
    { encoding: 'utf8' });
  const [executable, plain] = (r.stdout || '').trim().split('\n').slice(-2);
  return r.status === 0 && plain === 'True' && !importsAutoresearch(executable) ? executable : undefined;
}

const freeze = (python) => spawnSync(python, ['-m', 'pip', 'freeze', '--all'], { encoding: 'utf8', env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } }).stdout;

test('a plain Python first on PATH (pyenv): Install leaves it unchanged and uses a private venv, reused and updated without asking', { timeout: 360_000 },
  async (t) => {
    const python = plainPython();
    if (!python) return t.skip('the login shell\'s python3 is not a plain interpreter without the daemon (no pyenv or conda here)');
    const before = freeze(python);
    const workspace = makeDemoRepo();
    const mark = stepTimer('install-plain');
    await withAutoresearch('install-plain', { workspace, settings: { 'autoresearch.python': '' } }, async ({ page, stateFile, profile, logs }) => {
      await showResults(page);
      const offer = await waitFor(async () => (await allNotifications(page)).find((n) => OFFER.test(n)),
        { timeoutMs: 60_000, message: 'the install offer' });
      assert.ok(offer.includes(`which ${python} (Python `), `the offer names the interpreter by its path: ${offer}`);
      assert.ok(offer.includes(`${python} itself is left unchanged`), offer);
      mark('offer');
      await clickNotificationButton(page, OFFER, 'Install');
      await waitFor(async () => (await allNotifications(page)).some((n) => /the daemon is installed in a private environment/.test(n)),
        { timeoutMs: 300_000, message: 'the install to finish' });
      await waitForState(stateFile, (s) => s.daemon === 'ready', { timeoutMs: 60_000, message: 'the daemon from the private venv' });
      mark('installed');
      assert.equal(freeze(python), before, `nothing installed into ${python}`);
      assert.ok(!importsAutoresearch(python));
      const storage = globalStorage(profile);
      const venv = path.join(storage, fs.readdirSync(storage).find((d) => d.startsWith('venv-')));
      assert.match(logs('Autoresearch'), new RegExp(`Starting ${venv.replace(/[.]/g, '\\.')}/bin/python -m autoresearch serve`));

      // A restart reuses it: no offer, no pip.
      const stampFile = path.join(venv, 'autoresearch-install.json');
      const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
      await runCommand(page, 'Autoresearch: Restart Daemon');
      await waitForState(stateFile, (s) => s.daemon === 'starting', { timeoutMs: 30_000 }).catch(() => {});
      await waitForState(stateFile, (s) => s.daemon === 'ready', { timeoutMs: 60_000 });
      assert.deepEqual(JSON.parse(fs.readFileSync(stampFile, 'utf8')), stamp, 'reused as it was');
      mark('reused');

      // Another daemon in the .vsix than the one installed (an update of the extension): updated
      // without asking, in the same venv.
      fs.writeFileSync(stampFile, JSON.stringify({ ...stamp, source: 'autoresearch-0.0.1-py3-none-any.whl#older' }));
      await runCommand(page, 'Autoresearch: Restart Daemon');
      const updated = await waitFor(() => {
        const now = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
        return now.source === stamp.source && now.installed !== stamp.installed && now;
      }, { timeoutMs: 180_000, message: 'the private venv updated to the bundled daemon' });
      assert.equal(updated.createdWith, stamp.createdWith);
      await waitForState(stateFile, (s) => s.daemon === 'ready', { timeoutMs: 60_000 });
      assert.equal((await allNotifications(page)).filter((n) => OFFER.test(n)).length, 0, 'never asked again');
      mark('updated');
      await screenshot(page, 'install-plain');
    });
  });
