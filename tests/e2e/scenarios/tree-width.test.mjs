// 100,000 experiments in the side bar at 560 px (the width the other scenarios widen it to): the
// session's header leads with every count, compact ("99k experiments · 19k keep · 76k discard ·
// 4654 crash"), none of them cut off (the best after them may be); its tooltip has every digit,
// the same numbers, adding up. The ledger
// is another tool's results.tsv (observed), all rows on one real commit: the daemon reads it,
// counts it and names the best; the extension only shows that.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { screenshot, treeRow, viewPane, waitFor } from '../harness.mjs';
import { git, makeDemoRepo, showResults, VIEW, waitForState, withAutoresearch } from '../autoresearch.mjs';

const N = 100_000;

/** results.tsv of N rows: about 19% keep (each better), 76% discard, 5% crash. */
function bigLedger(dir) {
  fs.writeFileSync(path.join(dir, '.gitignore'), 'results.tsv\nrun.log\n');
  git(dir, 'checkout', '-q', '-b', 'autoresearch/nov25');
  git(dir, 'add', '.gitignore');
  git(dir, 'commit', '-q', '-m', 'ignore the loop files');
  const commit = git(dir, 'rev-parse', '--short=7', 'HEAD').trim();
  const counts = { keep: 0, discard: 0, crash: 0 };
  let best = 2;
  let bestNumber = 0;
  const lines = ['commit\tval_loss\tmemory_gb\tstatus\tdescription'];
  for (let i = 0; i < N; i++) {
    const r = (i * 7919) % 1000;
    const status = i === 0 || r < 192 ? 'keep' : r < 954 ? 'discard' : 'crash';
    let metric = '0.000000';
    if (status === 'keep') {
      best = i === 0 ? 2 : best - 1e-6;
      bestNumber = i;
      metric = best.toFixed(6);
    } else if (status === 'discard') metric = (best + 0.01).toFixed(6);
    if (i > 0) counts[status]++;
    lines.push(`${commit}\t${metric}\t${status === 'crash' ? '0.0' : '1.0'}\t${status}\texperiment ${i}`);
  }
  fs.writeFileSync(path.join(dir, 'results.tsv'), `${lines.join('\n')}\n`);
  return { counts, best: Number(best.toFixed(6)), bestNumber };
}

const compact = (n) => (n < 10_000 ? String(n) : `${Math.trunc(n / 1000)}k`);

test('100,000 experiments: the header fits a 560 px side bar, the tooltip has every digit', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo({ toml: false });
  const { counts, bestNumber } = bigLedger(workspace);
  const total = counts.keep + counts.discard + counts.crash;
  assert.equal(total, N - 1);
  await withAutoresearch('tree-width', { workspace }, async ({ page, stateFile }) => {
    await showResults(page);
    await waitForState(stateFile, (s) => s.mode === 'observer' && /crash/.test(s.tree.session?.description ?? ''), { timeoutMs: 120_000 });
    const pane = await viewPane(page, VIEW).boundingBox();
    assert.ok(pane.width >= 550 && pane.width <= 570, `a 560 px side bar (${pane.width} px)`);
    const row = treeRow(page, VIEW, 'autoresearch/nov25');
    const wanted = `${compact(total)} experiments · ${compact(counts.keep)} keep · ${compact(counts.discard)} discard · ${compact(counts.crash)} crash`;
    let seen;
    await waitFor(async () => {
      seen = await row.locator('.label-description').first().textContent().catch(() => '');
      return seen.startsWith(`${wanted} · best `);
    }, { timeoutMs: 60_000, message: () => `the header to say "${wanted}" (it says "${seen}")` });
    assert.ok(seen.includes(`(#${bestNumber})`), seen);
    // Where the counts end ("… crash") against the right edge of what the row shows.
    const fit = await row.locator('.label-description').first().evaluate((el) => {
      const clip = el.closest('.monaco-icon-label-container') || el.parentElement;
      const node = el.firstChild;
      const range = document.createRange();
      range.setStart(node, 0);
      range.setEnd(node, node.textContent.indexOf(' crash') + ' crash'.length);
      return { countsEnd: range.getBoundingClientRect().right, shown: clip.getBoundingClientRect().right };
    });
    await screenshot(page, 'tree-width');
    assert.ok(fit.countsEnd <= fit.shown, `the counts are cut off: they end at ${fit.countsEnd} px, the row at ${fit.shown} px`);

    await row.hover();
    const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'after the baseline' }).first();
    await hover.waitFor({ state: 'visible', timeout: 10_000 });
    const exact = (n) => n.toLocaleString('en-US');
    const text = await hover.textContent();
    assert.ok(text.includes(`${exact(total)} experiments · ${exact(counts.keep)} keep · ${exact(counts.discard)} discard · ${exact(counts.crash)} crash after the baseline`), text);
  });
});
