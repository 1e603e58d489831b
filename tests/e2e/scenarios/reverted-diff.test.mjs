// A reverted experiment's changes stay reviewable: the sweep is confined to EPOCHS in [1, 3]
// (far worse than the baseline's 60), so experiment #1 is surely discarded and reverted. In the
// results tree, expanding #1 lists train.py; clicking it opens a diff editor (parent -> the
// reverted commit, read through the daemon) showing the changed line on both sides, while the
// file on disk is back to the baseline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { editorText, screenshot, treeRow, waitFor, waitForTree } from '../harness.mjs';
import {
  cli, makeDemoRepo, readResults, showResults, STATUS_ICON, VIEW, waitForExperiments, withAutoresearch,
} from '../autoresearch.mjs';

test('reverted experiment: clicking its file opens the diff with the changed line on both sides', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo({
    tomlEdit: (t) => t.replace(/\[agent\][^[]*$/, '[agent]\nkind = "sweep"\nseed = 7\nparams = [{ name = "EPOCHS", low = 1, high = 3 }]\n'),
  });
  cli(workspace, 'run', '--loop', '1');
  const results = readResults(path.join(workspace, 'results.tsv'));
  assert.deepEqual(results.map((r) => r.status), ['keep', 'discard'], 'baseline kept, #1 discarded');
  const [, before, after] = results[1].description.match(/^EPOCHS (\S+) -> (\S+)$/);
  assert.equal(before, '60');
  assert.match(fs.readFileSync(path.join(workspace, 'train.py'), 'utf8'), /^EPOCHS = 60$/m, 'reverted on disk');

  await withAutoresearch('reverted-diff', { workspace }, async ({ page }) => {
    await showResults(page);
    const rows = await waitForExperiments(page, (ex) => ex.length === 2);
    const discarded = rows.find((r) => r.label.startsWith('#1 '));
    assert.equal(discarded.icon, STATUS_ICON.discard);

    // Expand #1: its changed file, with the diff stat.
    await treeRow(page, VIEW, /^#1 /).click();
    const files = await waitForTree(page, VIEW, (items) => items.some((r) => r.label === 'train.py'));
    const file = files.find((r) => r.label === 'train.py');
    assert.match(file.description, /\+1 −1 · modified/);

    // Click it: the diff editor, parent (EPOCHS = 60) -> reverted commit (EPOCHS = <new>).
    await treeRow(page, VIEW, 'train.py').click();
    const original = await waitFor(async () => {
      const text = await editorText(page, { side: 'original' });
      return text.includes('EPOCHS = ') && text;
    }, { message: 'the diff editor' });
    const modified = await editorText(page, { side: 'modified' });
    assert.match(original, new RegExp(`^EPOCHS = ${before}$`, 'm'));
    assert.match(modified, new RegExp(`^EPOCHS = ${after}$`, 'm'));
    assert.doesNotMatch(modified, /^EPOCHS = 60$/m);
    // The changed line is marked as such on both sides.
    assert.ok(await page.locator('.monaco-diff-editor .editor.original .line-delete, .monaco-diff-editor .editor.original .char-delete').count() > 0,
      'a deletion is marked on the original side');
    assert.ok(await page.locator('.monaco-diff-editor .editor.modified .line-insert, .monaco-diff-editor .editor.modified .char-insert').count() > 0,
      'an insertion is marked on the modified side');
    // The tab says which experiment it is.
    const tab = await page.locator('.tabs-container .tab.active').first().textContent();
    assert.match(tab, /train\.py \(#1 discard/);
    await screenshot(page, 'reverted-diff');
    // The working tree was not touched by looking at the diff.
    assert.match(fs.readFileSync(path.join(workspace, 'train.py'), 'utf8'), /^EPOCHS = 60$/m);
  });
});
