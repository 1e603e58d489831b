// Proves the harness: a throwaway extension (fixtures/smoke-extension) packaged with vsce at
// test time, installed into code-server, driven from the palette, a view, the status bar and
// quick inputs; no process is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  answerInput, editorText, focusView, makeTempDir, packageVsix, pickItem, runCommand, screenshot,
  sessionProcesses, statusBarItems, waitFor, waitForNotification, waitForTree, webviewFrame, withVSCode,
} from '../harness.mjs';

const FIXTURE = fileURLToPath(new URL('../fixtures/smoke-extension', import.meta.url));

test('smoke: palette command, notification, file write, view, status bar, quick inputs', { timeout: 300_000 }, async () => {
  const ext = makeTempDir('ar-e2e-smoke-ext-');
  const workspace = makeTempDir('ar-e2e-smoke-ws-');
  fs.cpSync(FIXTURE, ext, { recursive: true });
  const vsix = packageVsix(ext);
  fs.writeFileSync(path.join(workspace, 'README.md'), '# smoke workspace\n');
  const token = randomUUID();
  let sessionId;
  try {
    await withVSCode('smoke', { workspace, vsix, env: { E2E_SMOKE_TOKEN: token } }, async ({ page, profile, logs }) => {
      sessionId = profile.root;

      // A palette command runs in the extension host (with our environment) and notifies.
      await runCommand(page, 'E2E Smoke: Hello');
      await waitForNotification(page, 'E2E Smoke: hello from the extension host');
      const hello = path.join(workspace, 'smoke-hello.txt');
      await waitFor(() => fs.existsSync(hello), { message: 'smoke-hello.txt' });
      assert.equal(fs.readFileSync(hello, 'utf8'), `hello ${token}\n`);
      await screenshot(page, 'smoke-notification');

      // A contributed view (collapsed at start) is focused and its tree read.
      await focusView(page, 'Smoke Items');
      const items = await waitForTree(page, 'Smoke Items', (rows) => rows.length === 2);
      assert.deepEqual(items.map((r) => [r.label, r.description, r.icon, r.level]),
        [['alpha', 'first', 'codicon-pass', 1], ['beta', 'second', 'codicon-error', 1]]);

      // The extension's status bar item.
      const status = await waitFor(async () => (await statusBarItems(page)).find((i) => i.id.endsWith('.e2eSmoke.status')),
        { message: 'the smoke status bar item' });
      assert.equal(status.text, 'smoke ready');
      assert.deepEqual(status.icons, ['codicon-beaker']);

      // An input box then a quick pick, answered through the UI.
      await runCommand(page, 'E2E Smoke: Ask');
      await answerInput(page, 'Ada Lovelace', { prompt: 'Your name?' });
      await pickItem(page, 'green', { prompt: 'Pick a color' });
      const ask = path.join(workspace, 'smoke-ask.txt');
      await waitFor(() => fs.existsSync(ask), { message: 'smoke-ask.txt' });
      assert.equal(fs.readFileSync(ask, 'utf8'), 'Ada Lovelace green\n');

      // A diff editor: both sides readable.
      await runCommand(page, 'E2E Smoke: Diff');
      await waitFor(async () => (await editorText(page, { side: 'modified' })).includes('new line'), { message: 'the diff editor' });
      assert.equal(await editorText(page, { side: 'original' }), 'same\nold line\nsame\n');
      assert.equal(await editorText(page, { side: 'modified' }), 'same\nnew line\nsame\n');
      await screenshot(page, 'smoke-diff');

      // A webview's content.
      await runCommand(page, 'E2E Smoke: Webview');
      const web = webviewFrame(page);
      await web.locator('#title').waitFor();
      assert.equal(await web.locator('#points li').count(), 3);

      // The extension's LogOutputChannel is readable from the test.
      assert.match(logs('E2E Smoke'), /hello written/);
      await screenshot(page, 'smoke');
    });
    assert.deepEqual(sessionProcesses(sessionId), [], 'no process of the session is left');
  } finally {
    if (process.env.AUTORESEARCH_E2E_KEEP !== '1') {
      for (const d of [ext, workspace]) fs.rmSync(d, { recursive: true, force: true });
    }
  }
});
