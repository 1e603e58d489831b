// First run with a Python that cannot create virtual environments: Debian's python3 without the
// python3-venv package. The test machine has that package, and uninstalling it would be a change
// to the machine, so tests/e2e/fixtures/python-without-venv.sh builds the same interpreter beside
// it: Debian's binary and standard library minus `ensurepip` (which Debian ships only in
// python3.X-venv), so that `-m venv` fails exactly as there ("ensurepip is not available").
// Install then says so and how to fix it, in the notification; Start Loop does not repeat the
// plain offer but the failure, with Retry Install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, runCommand, screenshot, waitFor } from '../harness.mjs';
import {
  allNotifications, clickNotificationButton, globalStorage, makeDemoRepo, REPO, showResults, statusItem, waitForState,
  withAutoresearch,
} from '../autoresearch.mjs';

const OFFER = /^Autoresearch needs its daemon/;

test('Python without venv (Debian without python3-venv): the failure says why and how to fix it', { timeout: 240_000 }, async (t) => {
  if (!fs.existsSync('/usr/bin/python3')) return t.skip('needs Debian\'s python3 (tests/e2e/setup.sh installs it)');
  const made = spawnSync('bash', [path.join(REPO, 'tests', 'e2e', 'fixtures', 'python-without-venv.sh'), makeTempDir('ar-e2e-novenv-')], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const python = made.stdout.trim();
  const workspace = makeDemoRepo();
  await withAutoresearch('install-novenv', { workspace, settings: { 'autoresearch.python': python } }, async ({ page, stateFile, profile }) => {
    await showResults(page);
    const offer = await waitFor(async () => (await allNotifications(page)).find((n) => OFFER.test(n)), { timeoutMs: 60_000, message: 'the install offer' });
    assert.ok(offer.includes(`which ${python} (Python 3.`), offer);
    await clickNotificationButton(page, OFFER, 'Install');
    const expected = `Autoresearch: Python at ${python} cannot create virtual environments: install python3-venv ` +
      '(sudo apt install python3-venv), or set autoresearch.python to an interpreter with the autoresearch package.';
    await waitFor(async () => (await allNotifications(page)).includes(expected),
      { timeoutMs: 90_000, message: async () => `the failure's reason in the notification (shown: ${JSON.stringify(await allNotifications(page))})` });
    const storage = globalStorage(profile);
    assert.deepEqual(fs.existsSync(storage) ? fs.readdirSync(storage).filter((d) => d.startsWith('venv-')) : [], [], 'no half-made venv');
    await screenshot(page, 'install-novenv');
    // The failure's way out is on it: Retry, Open Settings, Show Log.
    await clickNotificationButton(page, expected, 'Open Settings');
    await waitFor(async () => (await page.locator('.settings-editor').count()) > 0, { message: 'the settings editor' });
    await waitFor(async () => /offers to install its daemon into a private virtual environment/.test(await page.locator('.settings-editor').first().textContent()),
      { message: 'the setting\'s description: what an empty value does' });
    await screenshot(page, 'install-novenv-settings');
    await page.keyboard.press('Escape'); // the settings editor opens as a modal overlay here
    await waitFor(async () => !(await page.locator('.settings-editor').first().isVisible().catch(() => false)), { message: 'the settings editor to close' })
      .catch(() => runCommand(page, 'View: Close Editor'));
    await waitForState(stateFile, (s) => s.daemon === 'failed');
    await waitFor(async () => (await statusItem(page, 'gpu'))?.text === 'GPU: no daemon', { message: 'the GPU item: no daemon' });

    // Start Loop: the failure again with Retry Install, not the plain offer; no second error.
    await runCommand(page, 'Autoresearch: Start Loop');
    const again = `Autoresearch: the daemon is not installed: Python at ${python} cannot create virtual environments`;
    await waitFor(async () => (await allNotifications(page)).some((n) => n.startsWith(again)), { message: 'the failure offered again' });
    await clickNotificationButton(page, again, 'Open Settings');
    await page.waitForTimeout(1000);
    const shown = await allNotifications(page);
    assert.ok(!shown.some((n) => /could not start|not running/.test(n)), `one message, not two: ${JSON.stringify(shown)}`);
  });
});
