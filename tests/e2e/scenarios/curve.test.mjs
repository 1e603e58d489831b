// The learning curve in the chart ([metric] curve): while an experiment runs, its curve grows
// under the experiments' chart, live (the label's step advances within one experiment), drawn
// over the best experiment's curve; after the loop, a click on an experiment shows its curve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerInput, runCommand, screenshot, waitFor, webviewFrame } from '../harness.mjs';
import { makeDemoRepo, pickStep, stepTimer, waitForState, withAutoresearch } from '../autoresearch.mjs';

const TRAIN = `import time
LR = 0.5
STEPS = 30

for step in range(STEPS + 1):
    val = 3.0 / (1 + step) + abs(LR - 0.3)
    print(f"step {step} | val_loss: {val:.5f}", flush=True)
    time.sleep(0.25)
print(f"val_loss: {val:.6f}")
`;

test('curve: a running experiment\'s curve grows live over the best\'s', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo({
    files: { 'train.py': TRAIN },
    tomlEdit: (toml) => toml
      .replace("[metric]\n", "[metric]\ncurve = '^step (\\d+).*val_loss:? ([-+0-9.eE]+)'\n")
      .concat('\n[[agent.params]]\nname = "LR"\nlow = 0.1\nhigh = 1.0\n'),
  });
  const mark = stepTimer('curve');
  await withAutoresearch('curve', { workspace }, async ({ page, stateFile }) => {
    await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });
    await runCommand(page, 'Autoresearch: Show Chart');
    const chart = webviewFrame(page);
    await chart.locator('#summary').filter({ hasText: /^0 experiments/ }).waitFor();
    mark('chart open');

    await runCommand(page, 'Autoresearch: Start Loop');
    await pickStep(page, 'Start with autoresearch.toml', /How to start/);
    await answerInput(page, '2', { prompt: /How many experiments/ });

    // Live: within one running experiment the label's step advances (several updates, not one).
    const label = chart.locator('#curve-label');
    const read = async () => {
      const text = (await label.isVisible()) ? await label.textContent() : '';
      const m = text.match(/^#(\d+) running · step (\d+): (\S+)/);
      return m ? { number: Number(m[1]), step: Number(m[2]), text } : undefined;
    };
    const first = await waitFor(async () => {
      const r = await read();
      return r && r.number >= 1 && r.step < 25 ? r : undefined;
    }, { timeoutMs: 120_000, message: async () => `a running experiment's curve (label: ${await label.textContent().catch(() => '')})` });
    const later = await waitFor(async () => {
      const r = await read();
      return r && r.number === first.number && r.step > first.step ? r : undefined;
    }, { timeoutMs: 60_000, message: async () => `the curve of #${first.number} to grow past step ${first.step}` });
    assert.ok(later.step > first.step);
    // Drawn over the best experiment's curve (the baseline's at least), named in the label.
    assert.match(later.text, /best #\d+ at step \d+: /);
    assert.ok(await chart.locator('#curve canvas').count() > 0, 'the curve is drawn');
    mark('live curve');
    await screenshot(page, 'curve-live');

    await waitForState(stateFile, (s) => s.phase === 'stopped', { timeoutMs: 120_000, message: 'the loop to stop' });
    await waitFor(async () => /best #\d+ at step/.test((await label.textContent()) ?? ''), { message: 'the best\'s curve after the loop' });
    mark('loop done');
    await screenshot(page, 'curve-done');

    // Clicking an experiment's point shows its stored curve in the running one's place.
    const over = chart.locator('.u-over').first();
    const box = await over.boundingBox();
    await over.hover({ position: { x: box.width - 2, y: box.height / 2 }, force: true });
    await chart.locator('#tooltip').filter({ hasText: /^#2 / }).waitFor();
    await over.click({ position: { x: box.width - 2, y: box.height / 2 }, force: true });
    await waitFor(async () => /^#2 selected · step 30: /.test((await label.textContent()) ?? ''),
      { message: async () => `the curve of #2 after a click (label: ${await label.textContent()})` });
  });
});
