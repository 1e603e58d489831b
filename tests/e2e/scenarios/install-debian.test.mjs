// First run on a fresh GPU box whose only Python is Debian's python3, marked externally managed
// (PEP 668): the daemon is not installed anywhere. The install offer names the interpreter by its
// path; Start Loop run meanwhile waits for the answer, given a minute later (past the 60 s a
// request used to give up after); Install puts the bundled daemon into a private venv in the
// extension's storage (Debian's python3 unchanged), says so, and the wizard goes on by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCommand, screenshot, waitFor } from '../harness.mjs';
import {
  allNotifications, clickNotificationButton, globalStorage, importsAutoresearch, makeDemoRepo, pickStep, showResults,
  statusItem, stepTimer, SYSTEM_SHELL_ENV, viewMessage, waitForState, withAutoresearch,
} from '../autoresearch.mjs';

const DEBIAN = '/usr/bin/python3';
const OFFER = /^Autoresearch needs its daemon/;

test('Debian python3 (externally managed): Start Loop waits for the install offer answered a minute later, then goes on', { timeout: 420_000 },
  async (t) => {
    if (!fs.readdirSync('/usr/lib').some((d) => /^python3\.\d+$/.test(d) && fs.existsSync(`/usr/lib/${d}/EXTERNALLY-MANAGED`))) {
      return t.skip('needs Debian\'s python3 (tests/e2e/setup.sh installs it)');
    }
    assert.ok(!importsAutoresearch(DEBIAN), 'the machine\'s python3 starts without the daemon');
    const workspace = makeDemoRepo();
    const mark = stepTimer('install-debian');
    await withAutoresearch('install-debian', { workspace, settings: { 'autoresearch.python': '' }, env: SYSTEM_SHELL_ENV },
      async ({ page, stateFile, profile }) => {
        await showResults(page);
        const offer = await waitFor(async () => (await allNotifications(page)).find((n) => OFFER.test(n)),
          { timeoutMs: 60_000, message: 'the install offer' });
        mark('offer shown');
        assert.match(offer, /which \/usr\/bin\/python3 \(Python 3\.\d+\.\d+, default\) does not have\. Install it into a private environment created with \/usr\/bin\/python3\?/);
        // No indicator pretends: the GPU item and the view say the daemon waits for the answer.
        const gpu = await statusItem(page, 'gpu');
        assert.equal(gpu?.text, 'GPU: no daemon');
        assert.match(await viewMessage(page), /not installed: answer the notification/);

        await runCommand(page, 'Autoresearch: Start Loop');
        const asked = Date.now();
        await page.waitForTimeout(62_000); // past the 60 s after which a request used to give up
        const meanwhile = await allNotifications(page);
        assert.ok(!meanwhile.some((n) => /not running|could not start/.test(n)), `no give-up: ${JSON.stringify(meanwhile)}`);
        assert.ok(!/detecting settings/.test(await page.locator('.part.statusbar').textContent()), 'nothing "detecting" while the offer waits');
        mark('a minute later');

        await clickNotificationButton(page, OFFER, 'Install');
        const done = await waitFor(async () => (await allNotifications(page)).find((n) => /the daemon is installed in a private environment/.test(n)),
          { timeoutMs: 300_000, message: 'the install to finish' });
        mark('installed');
        const storage = globalStorage(profile);
        const venv = fs.readdirSync(storage).find((d) => /^venv-3\.\d+\.\d+$/.test(d));
        assert.ok(venv, `a private venv in ${storage}: ${fs.readdirSync(storage)}`);
        assert.ok(done.includes(path.join(storage, venv)), done);
        const stamp = JSON.parse(fs.readFileSync(path.join(storage, venv, 'autoresearch-install.json'), 'utf8'));
        assert.equal(stamp.createdWith, DEBIAN);
        assert.match(stamp.source, /^autoresearch-.*\.whl#/, 'the wheel bundled in the .vsix');

        // The wizard goes on by itself: its first question, answered by nobody else.
        await pickStep(page, 'Start with autoresearch.toml', /How to start/);
        mark(`wizard went on, ${Math.round((Date.now() - asked) / 1000)} s after Start Loop`);
        await page.keyboard.press('Escape');
        const state = await waitForState(stateFile, (s) => s.daemon === 'ready');
        assert.doesNotMatch(state.statusBar.gpu, /…|no daemon/, 'the GPU item has figures or says why there are none');
        assert.ok(!importsAutoresearch(DEBIAN), 'Debian\'s python3 is left as it was');
        await screenshot(page, 'install-debian');
      });
  });
