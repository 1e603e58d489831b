// The editor's own chat model as the edit step (agent.kind "editor", issue #18): a test-only
// extension (fixtures/scripted-lm) registers a scripted chat model provider with
// vscode.lm.registerLanguageModelChatProvider; Start Loop offers "The editor's chat model", then
// the models VS Code has; the loop runs three experiments whose edits the model's replies made
// (SEARCH/REPLACE), described by the replies, with the model's token counts recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { answerInput, makeTempDir, packageVsix, runCommand, screenshot } from '../harness.mjs';
import {
  acceptInput, makeDemoRepo, pickStep, readResults, showResults, waitForExperiments, waitForState, withAutoresearch,
} from '../autoresearch.mjs';

const FIXTURE = fileURLToPath(new URL('../fixtures/scripted-lm', import.meta.url));

test('editor model: the wizard picks a chat model, three experiments from its replies', { timeout: 300_000 }, async () => {
  const ext = makeTempDir('ar-e2e-lm-ext-');
  fs.cpSync(FIXTURE, ext, { recursive: true });
  const lmVsix = packageVsix(ext);
  const lmLog = path.join(makeTempDir('ar-e2e-lm-log-'), 'prompts.jsonl');
  const workspace = makeDemoRepo({ toml: false });
  const git = (...args) => execFileSync('git', ['-C', workspace, ...args], { encoding: 'utf8' });
  await withAutoresearch('editor-model', { workspace, extraVsix: [lmVsix], env: { E2E_LM_LOG: lmLog } }, async ({ page, stateFile }) => {
    await showResults(page);
    await waitForState(stateFile, (s) => s.daemon === 'ready', { message: 'the daemon to be ready' });

    await runCommand(page, 'Autoresearch: Start Loop');
    await answerInput(page, 'val_loss', { prompt: /metric's name/ });
    await pickStep(page, 'Lower is better', /lower or a higher val_loss better/);
    await acceptInput(page, /command that runs one experiment/);
    await acceptInput(page, /How to read val_loss/);
    await acceptInput(page, /Files the agent may edit/); // train.py
    await acceptInput(page, /guard command/);
    await pickStep(page, "The editor's chat model", /Who makes the edits/);
    // The models VS Code offers: the scripted provider's one.
    await pickStep(page, /Scripted Model/, /Which chat model edits/);
    await answerInput(page, '3', { prompt: /How many experiments/ });

    await waitForExperiments(page, (ex) => ex.length === 4, { timeoutMs: 180_000 });
    await waitForState(stateFile, (s) => s.phase === 'stopped' && s.tree.items.length === 4,
      { timeoutMs: 60_000, message: 'the loop to stop after 3 experiments' });
    await screenshot(page, 'editor-model');
  });

  // The wizard saved the editor agent and the model's vendor and family.
  const toml = fs.readFileSync(path.join(workspace, 'autoresearch.toml'), 'utf8');
  assert.match(toml, /kind = "editor"/);
  assert.match(toml, /vendor = "e2e-scripted"/);
  assert.match(toml, /family = "scripted"/);

  // Three calls of the model, each sent the per-iteration prompt with train.py's contents.
  const prompts = fs.readFileSync(lmLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(prompts.length, 3);
  for (const [i, p] of prompts.entries()) {
    assert.match(p.prompt, new RegExp(`experiment #${i + 1}`));
    assert.match(p.prompt, /## The editable files now\n\ntrain\.py\n```/);
    assert.match(p.prompt, /<<<<<<< SEARCH/);
  }

  // Each experiment is the reply's edit, described by the reply; the tokens are recorded.
  const results = readResults(path.join(workspace, 'results.tsv'));
  assert.deepEqual(results.map((r) => r.description), [
    'baseline',
    'scripted: learning rate up (0.01 -> 0.03)',
    'scripted: wider hidden layer (8 -> 12)',
    'scripted: less weight decay (0.001 -> 0.0005)',
  ]);
  const expected = ['LEARNING_RATE = 0.03', 'HIDDEN = 12', 'WEIGHT_DECAY = 0.0005'];
  for (const [i, line] of expected.entries()) {
    const diff = git('diff', `${results[i + 1].commit}~1`, results[i + 1].commit, '--', 'train.py');
    assert.match(diff, new RegExp(`^\\+${line.replace('.', '\\.')}$`, 'm'), `#${i + 1}: its edit`);
    assert.equal(git('diff', '--stat', `${results[i + 1].commit}~1`, results[i + 1].commit).trim().split('\n').length, 2,
      `#${i + 1}: one file changed`);
  }
  const records = fs.readFileSync(path.join(workspace, '.autoresearch', 'experiments.jsonl'), 'utf8')
    .trim().split('\n').map((l) => JSON.parse(l));
  for (const exp of records.slice(1)) {
    assert.ok(exp.tokens > 1010, `#${exp.number}: the prompt's and the reply's tokens (${exp.tokens})`);
  }
});
