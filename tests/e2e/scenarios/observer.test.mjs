// Observer mode: a repository whose results.tsv was written by another tool (the columns of
// tests/server/data/extra-columns.tsv: another metric name, an extra artifact_mb column), with
// one commit per experiment on an autoresearch/... branch made here (discarded ones reset away,
// as a coding agent following the autoresearch skill does). No autoresearch.toml: the extension
// activates on results.tsv, the tree shows the session as observed, and a row the other tool
// appends while VS Code is open appears without any action.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { screenshot, treeRow } from '../harness.mjs';
import {
  experimentRows, formatMetric, git, makeDemoRepo, REPO, showResults, STATUS_ICON, statusItem, stepTimer,
  VIEW, waitForExperiments, waitForState, withAutoresearch,
} from '../autoresearch.mjs';

const SAMPLE = path.join(REPO, 'tests', 'server', 'data', 'extra-columns.tsv');
const ROWS = 8; // of the sample's 22: enough for every status and a few keeps in a row

/** Another tool's loop: per row, edit train.py and commit; a discarded commit is reset away. */
function otherTool(dir) {
  const [header, ...lines] = fs.readFileSync(SAMPLE, 'utf8').trim().split('\n');
  const results = path.join(dir, 'results.tsv');
  fs.writeFileSync(path.join(dir, '.gitignore'), 'results.tsv\nrun.log\n');
  git(dir, 'checkout', '-q', '-b', 'autoresearch/blitz');
  git(dir, 'add', '.gitignore');
  git(dir, 'commit', '-q', '-m', 'ignore the loop files');
  fs.writeFileSync(results, `${header}\n`);
  let n = 0;
  const experiment = (line) => {
    const cols = line.split('\t');
    if (n > 0) {
      const train = path.join(dir, 'train.py');
      fs.writeFileSync(train, fs.readFileSync(train, 'utf8').replace(/^HIDDEN = \d+$/m, `HIDDEN = ${8 + n}`));
      git(dir, 'commit', '-q', '-am', cols[5]);
    }
    cols[0] = git(dir, 'rev-parse', '--short=7', 'HEAD');
    fs.appendFileSync(results, `${cols.join('\t')}\n`);
    if (n > 0 && cols[4] !== 'keep') git(dir, 'reset', '-q', '--hard', 'HEAD~1');
    n++;
    return cols;
  };
  return { rows: lines.slice(0, ROWS).map(experiment), next: () => experiment(lines[ROWS]) };
}

test('observer: a results.tsv written by another tool appears in the tree and is followed', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo({ toml: false });
  const tool = otherTool(workspace);
  const mark = stepTimer('observer');

  await withAutoresearch('observer', { workspace }, async ({ page, stateFile }) => {
    mark('launched');
    await showResults(page);
    mark('view focused');
    const rows = await waitForExperiments(page, (ex) => ex.length === ROWS);
    mark('tree shown');

    // The session row names the other tool's branch and shows it is observed (an eye), as does
    // the status bar.
    const session = rows.find((r) => r.level === 1);
    assert.equal(session.label, 'autoresearch/blitz');
    const state = await waitForState(stateFile, (s) => s.mode === 'observer' && s.tree.items.length === ROWS);
    assert.equal(state.tree.session.label, 'autoresearch/blitz');
    assert.equal(session.icon, 'codicon-eye', 'the session row: observed');
    assert.match(session.description, /best 1\.27157 \(#7\) · 7 experiments · 6 keep · 1 discard · 0 crash/);
    const loopItem = await statusItem(page, 'loop');
    assert.match(loopItem.text, /blitz/);
    assert.deepEqual(loopItem.icons, ['codicon-eye']);

    // Every row: its metric (the other tool's val_bpb column) and its status icon, newest first.
    const shown = experimentRows(rows);
    assert.deepEqual(shown.map((r) => r.number), [...Array(ROWS).keys()].reverse());
    for (const [i, cols] of tool.rows.entries()) {
      const row = shown.find((r) => r.number === i);
      assert.equal(row.metric, formatMetric(cols[1]), `#${i} metric`);
      assert.equal(row.icon, STATUS_ICON[cols[4]], `#${i} ${cols[4]} icon`);
      assert.ok(row.change.startsWith(cols[5].slice(0, 30)), `#${i}: the change leads the row`);
    }
    // The tooltip has the extra column.
    await treeRow(page, VIEW, /^#2 /).hover();
    const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: '#2 · discard' }).first();
    await hover.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await hover.textContent(), /artifact_mb: 11\.98/);
    await page.mouse.move(5, 500);
    await screenshot(page, 'observer');

    // The other tool goes on: its new row appears by itself.
    const next = tool.next();
    const after = await waitForExperiments(page, (ex) => ex.length === ROWS + 1);
    const newest = experimentRows(after)[0];
    assert.equal(newest.number, ROWS);
    assert.equal(newest.metric, formatMetric(next[1]));
    assert.equal(newest.icon, STATUS_ICON[next[4]]);
    mark('followed');
    await screenshot(page, 'observer-followed');
  });
});
