// While the loop runs, the files in scope are read-only in the editor and carry the lock badge;
// after Stop they are writable again and .vscode/settings.json is what it was before the loop
// (a user value of files.readonlyInclude and another setting, kept through the loop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  answerInput, openFile, runCommand, screenshot, waitFor,
} from '../harness.mjs';
import {
  git, makeDemoRepo, pickStep, readState, showResults, stepTimer, waitForState, withAutoresearch,
} from '../autoresearch.mjs';

const SETTINGS = `{
  // the user's own settings
  "files.readonlyInclude": { "data/**": true },
  "editor.tabSize": 3
}
`;

/**
 * A file's decoration in the explorer: {badge: true when one is drawn, text: the badge's text
 * (a text badge is a CSS ::after content; VS Code's own read-only badge, a lock icon, takes its
 * place once the file is read-only), tooltip: the row's accessible label with every reason}.
 */
async function explorerDecoration(page, name) {
  const row = page.locator('.explorer-folders-view .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${name.replace('.', '\\.')}$`) }) }).first();
  return row.locator('.monaco-icon-label').first().evaluate((el) => {
    const after = getComputedStyle(el, '::after').content;
    return {
      badge: el.classList.contains('monaco-decoration-badge'),
      text: after && after !== 'none' && after !== 'normal' ? after.replace(/^"|"$/g, '') : '',
      tooltip: el.getAttribute('aria-label') || '',
    };
  });
}

/** Type into the active editor; resolves to the editor's text afterwards. */
async function typeInEditor(page, text) {
  const editor = page.locator('.editor-group-container.active .monaco-editor').first();
  await editor.locator('.view-lines').click({ position: { x: 5, y: 5 } });
  await page.keyboard.type(text);
}

const activeText = (page) => page.locator('.editor-group-container.active .monaco-editor .view-lines').first().innerText();

test('locks: in-scope files read-only with a lock badge while the loop runs, settings restored after Stop', { timeout: 240_000 }, async () => {
  // Each run sleeps a little so that the loop is surely still running while the test types.
  // A folder in scope is locked file by file (the daemon sends concrete paths), a name with glob
  // characters included: VS Code must read its readonlyInclude entry literally.
  const workspace = makeDemoRepo({
    tomlEdit: (t) => t.replace('command = "python3 train.py"', 'command = "sleep 1 && python3 train.py"')
      .replace('files = ["train.py"]', 'files = ["train.py", "conf/"]'),
    files: { '.gitignore': '.vscode/\n', 'data/readme.txt': 'data\n', 'conf/lr[1].txt': 'lr\n' },
  });
  // The user's settings, there before the loop (git-ignored, as .vscode/ often is).
  fs.mkdirSync(path.join(workspace, '.vscode'));
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), SETTINGS);
  const settingsFile = path.join(workspace, '.vscode', 'settings.json');
  const mark = stepTimer('locks');

  await withAutoresearch('locks', { workspace }, async ({ page, stateFile }) => {
    mark('launched');
    await showResults(page);
    await waitForState(stateFile, (s) => s.daemon === 'ready');
    // Explorer open with the files in sight, train.py open in an editor.
    await runCommand(page, 'View: Show Explorer');
    await openFile(page, 'train.py');
    assert.equal((await explorerDecoration(page, 'train.py')).badge, false, 'no badge before the loop');

    mark('start loop');
    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '', { prompt: /How many experiments/ }); // until stopped

    // Locked: the setting names train.py (the user's value kept), the badge shows, typing is refused.
    const locked = await waitForState(stateFile, (s) => s.locks.locked.includes('train.py') &&
      s.locks.readonlyInclude?.['train.py'] === true, { message: 'train.py locked' });
    assert.equal(locked.locks.readonlyInclude['data/**'], true, "the user's readonlyInclude kept while locked");
    assert.deepEqual(locked.locks.locked, ['conf/lr[1].txt', 'train.py'], 'concrete paths, no patterns');
    assert.equal(locked.locks.readonlyInclude['conf/lr[[]1[]].txt'], true, 'a literal glob for the bracketed name');
    mark('locked');
    await runCommand(page, 'View: Show Explorer'); // Start Loop revealed the results tree
    let decoration;
    await waitFor(async () => {
      decoration = await explorerDecoration(page, 'train.py');
      // Ours says why; VS Code's "Read-only" says files.readonlyInclude took effect (its lock
      // icon then is the badge drawn).
      return decoration.badge && decoration.tooltip.includes('Locked by Autoresearch: the autoresearch loop is running') &&
        decoration.tooltip.includes('Read-only');
    }, { message: () => `the lock badge on train.py (shown: ${JSON.stringify(decoration)})` });
    // The explorer draws each file's decoration when it gets to it: wait for this one too.
    let shield;
    await waitFor(async () => {
      shield = await explorerDecoration(page, 'evaluate.py');
      return shield.text === '🛡';
    }, { message: () => `the off-limits badge on evaluate.py (shown: ${JSON.stringify(shield)})` });
    assert.match(shield.tooltip, /Off-limits: the experiment loop never edits this file/);
    const onDisk = JSON.parse(fs.readFileSync(settingsFile, 'utf8').replace(/^\s*\/\/.*$/gm, ''));
    assert.equal(onDisk['files.readonlyInclude']['train.py'], true);
    assert.equal(onDisk['editor.tabSize'], 3);

    mark('badges seen');
    await openFile(page, 'train.py');
    // The editor tab carries the badge too, and says read-only.
    const tabLabel = page.locator('.tabs-container .tab.active .monaco-icon-label.monaco-decoration-badge').first();
    await waitFor(async () => /Locked by Autoresearch.*Read-only/.test(await tabLabel.getAttribute('aria-label').catch(() => '')),
      { message: 'the editor tab: locked, read-only' });
    await typeInEditor(page, 'zzz');
    await page.locator('.monaco-editor-overlaymessage').filter({ hasText: /read-?only/i }).first()
      .waitFor({ state: 'visible', timeout: 10_000 });
    assert.ok(!(await activeText(page)).includes('zzz'), 'the typed text is refused');
    assert.equal(await page.locator('.tabs-container .tab.active.dirty').count(), 0, 'the editor is not dirty');
    // The file under the folder in scope: our badge (its path was sent) and VS Code's read-only
    // (its bracketed glob matched the name literally).
    await openFile(page, 'conf/lr[1].txt');
    await waitFor(async () => /Locked by Autoresearch.*Read-only/.test(await tabLabel.getAttribute('aria-label').catch(() => '')),
      { message: 'the editor tab of conf/lr[1].txt: locked, read-only' });
    await screenshot(page, 'locks-running');

    // Stop: the running experiment finishes, the loop stops, the files unlock.
    mark('typing refused');
    await runCommand(page, 'Autoresearch: Stop Loop');
    const stopped = await waitForState(stateFile, (s) => s.phase === 'stopped' && s.locks.locked.length === 0 &&
      s.locks.readonlyInclude && !('train.py' in s.locks.readonlyInclude), { timeoutMs: 60_000, message: 'the loop stopped and unlocked' });
    assert.deepEqual(stopped.locks.readonlyInclude, { 'data/**': true });
    mark('stopped');
    await waitFor(() => fs.readFileSync(settingsFile, 'utf8') === SETTINGS,
      { message: () => `.vscode/settings.json back to what it was (now: ${JSON.stringify(fs.readFileSync(settingsFile, 'utf8'))})` });
    await runCommand(page, 'View: Show Explorer');
    await waitFor(async () => {
      decoration = await explorerDecoration(page, 'train.py');
      return !decoration.badge && !/Locked|Read-only/.test(decoration.tooltip);
    }, { message: () => `no lock badge after Stop (shown: ${JSON.stringify(decoration)})` });

    mark('unlocked');
    // Writable again: typing goes in (and is then undone, unsaved).
    await openFile(page, 'train.py');
    await typeInEditor(page, 'zzz');
    await waitFor(async () => (await activeText(page)).includes('zzz'), { message: 'typed text in the editor after Stop' });
    await page.locator('.tabs-container .tab.active.dirty').waitFor({ timeout: 10_000 }); // an unsaved edit
    mark('typed after stop');
    await screenshot(page, 'locks-stopped');
    await runCommand(page, 'File: Revert File');
    await waitFor(async () => !(await activeText(page)).includes('zzz'), { message: 'the edit reverted' });
    assert.doesNotMatch(fs.readFileSync(path.join(workspace, 'train.py'), 'utf8'), /zzz/);
  });
});

// A repository that commits its .vscode/settings.json: the lock the extension writes there must
// hold for the whole loop. The daemon treats that file as the editor's: scope enforcement leaves
// it alone and reverting a discarded experiment keeps its current content.
test('locks: a tracked .vscode/settings.json keeps the lock for the whole loop', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo({ files: { '.vscode/settings.json': SETTINGS } });
  const settingsFile = path.join(workspace, '.vscode', 'settings.json');
  await withAutoresearch('locks-tracked', { workspace }, async ({ page, stateFile, logs }) => {
    await waitForState(stateFile, (s) => s.daemon === 'ready');
    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '3', { prompt: /How many experiments/ });
    await waitForState(stateFile, (s) => s.locks.readonlyInclude?.['train.py'] === true, { message: 'train.py locked' });
    // Sample the file until the loop ends: train.py stays locked in it all along.
    const unlocked = [];
    await waitFor(() => {
      const s = readState(stateFile);
      const active = s && !['stopped', 'failed', 'idle'].includes(s.phase);
      if (active && !fs.readFileSync(settingsFile, 'utf8').includes('"train.py"')) unlocked.push(s.phase);
      return s && !active;
    }, { timeoutMs: 120_000, intervalMs: 20, message: 'the loop to end' });
    assert.deepEqual(unlocked, [], 'phases in which train.py was not locked in .vscode/settings.json');
    assert.doesNotMatch(logs('Autoresearch'), /\.vscode\/settings\.json is outside the scope/);
    await waitFor(() => fs.readFileSync(settingsFile, 'utf8') === SETTINGS, { message: 'settings.json as committed' });
    assert.equal(git(workspace, 'status', '--porcelain', '--', '.vscode'), '', 'nothing left modified');
  });
});
