// What the Autoresearch scenarios share: the sample repository (the bundled demo example in a
// temp git repo), the daemon's interpreter, the packaged extension, a session with the
// extension's e2e state dump, and readers for results.tsv and the results tree.
// Not a scenario (run.mjs only runs scenarios/*.test.mjs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  makeTempDir, notifications, openPalette, pickItem, quickPickItems, runCommand, statusBarItems, treeItems, viewPane, waitFor, waitForPrompt,
  waitForQuickInput, withVSCode,
} from './harness.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO = path.join(REPO, 'server', 'autoresearch', 'examples', 'demo');
export const VIEW = 'Experiments';
/** The codicon of each status in the results tree (extension/format.ts STATUS_ICONS). */
export const STATUS_ICON = { keep: 'codicon-pass-filled', discard: 'codicon-circle-slash', crash: 'codicon-error' };
export const LOCK_BADGE = '🔒';
const KEEP = process.env.AUTORESEARCH_E2E_KEEP === '1';

/** The interpreter that runs the daemon: $AUTORESEARCH_PYTHON (the Makefile sets it), else .venv. */
export function python() {
  const p = process.env.AUTORESEARCH_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
  if (!fs.existsSync(p)) {
    throw new Error(`e2e: no Python for the daemon at ${p}: run \`make test-python\` (creates .venv) or set AUTORESEARCH_PYTHON`);
  }
  return path.resolve(p);
}

function newestMtime(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((e) => newestMtime(path.join(p, e))));
}

let vsixChecked;
/**
 * The packaged extension (autoresearch.vsix at the repository root), rebuilt with
 * `npm run package` when missing or older than the extension's sources.
 */
export function vsix() {
  const out = path.join(REPO, 'autoresearch.vsix');
  if (vsixChecked) return out;
  const sources = ['extension', 'media', 'package.json', 'esbuild.mjs'].map((p) => path.join(REPO, p)).filter(fs.existsSync);
  if (!fs.existsSync(out) || Math.max(...sources.map(newestMtime)) > fs.statSync(out).mtimeMs) {
    const r = spawnSync('npm', ['run', '--silent', 'package'], { cwd: REPO, encoding: 'utf8', timeout: 180_000 });
    if (r.status !== 0) throw new Error(`e2e: npm run package failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  vsixChecked = true;
  return out;
}

let hookBuilt;
/**
 * The state dump's hook (tests/e2e/hook/), built to out/e2e/hook.js: not in the .vsix, which is
 * the shipped one; the extension loads it only when AUTORESEARCH_E2E_HOOK names it.
 */
export function e2eHook() {
  const out = path.join(REPO, 'out', 'e2e', 'hook.js');
  if (hookBuilt) return out;
  const r = spawnSync(process.execPath, ['esbuild.mjs', '--e2e-hook'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0 || !fs.existsSync(out)) throw new Error(`e2e: building the state hook failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  hookBuilt = true;
  return out;
}

export function git(dir, ...args) {
  const r = spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed in ${dir}: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * A fresh git repository holding the demo example (train.py, evaluate.py and, unless
 * `toml: false`, autoresearch.toml), committed on `main`. `files`: extra or replaced files
 * {relPath: text} in the first commit. `tomlEdit(text) -> text` rewrites autoresearch.toml.
 */
export function makeDemoRepo({ toml = true, tomlEdit, files = {}, prefix = 'ar-e2e-ws-' } = {}) {
  const dir = makeTempDir(prefix);
  for (const f of ['train.py', 'evaluate.py', ...(toml ? ['autoresearch.toml'] : [])]) {
    fs.copyFileSync(path.join(DEMO, f), path.join(dir, f));
  }
  if (toml && tomlEdit) {
    const p = path.join(dir, 'autoresearch.toml');
    fs.writeFileSync(p, tomlEdit(fs.readFileSync(p, 'utf8')));
  }
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.name', 'E2E Test');
  git(dir, 'config', 'user.email', 'e2e@example.invalid');
  git(dir, 'config', 'commit.gpgsign', 'false');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'demo');
  return dir;
}

/** `autoresearch <args>` with the daemon's interpreter, in `dir` (e.g. run --loop 3 to prepare a session). */
export function cli(dir, ...args) {
  const r = spawnSync(python(), ['-m', 'autoresearch', ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`autoresearch ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Rows of a results.tsv: [{commit, metric, memory_gb, status, description, ...}] (header names as keys). */
export function readResults(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
  const header = lines[0].split('\t');
  return lines.slice(1).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [header[i], v])));
}

/** The metric as the extension prints it (format.ts formatMetric). */
export function formatMetric(value) {
  const v = typeof value === 'string' ? Number(value) : value;
  if (value === '' || value === null || value === undefined || !Number.isFinite(v)) return '—';
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-4)) return v.toExponential(3);
  return String(Number(v.toPrecision(6)));
}

/** The icons of the row of the experiment being made (spinner; manual mode's edit phase: pencil). */
export const MAKING_ICONS = ['codicon-loading', 'codicon-edit'];

/**
 * Tree rows that are experiments (label "#3 LEARNING_RATE 0.01 -> 0.02": the number, then the
 * change; description "0.0881 · Δ +0.01 · 1.2 GB": the metric first), with number, change and
 * metric text split out.
 */
export function experimentRows(rows) {
  return rows.filter((r) => /^#\d+( |$)/.test(r.label) && !MAKING_ICONS.includes(r.icon))
    .map((r) => {
      const [, number, change = ''] = r.label.match(/^#(\d+)(?: (.*))?$/);
      return { ...r, number: Number(number), change, metric: (r.description || '').split(' · ')[0] };
    });
}

/** The extension's e2e state dump (tests/e2e/hook/e2eState.ts, loaded by the extension through AUTORESEARCH_E2E_HOOK), or null before its first write. */
export function readState(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** Wait until `predicate(state)` holds for the dump; returns the state. */
export async function waitForState(file, predicate, { timeoutMs, intervalMs, message = 'the extension state' } = {}) {
  let last = null;
  return waitFor(() => { last = readState(file); return last && predicate(last) && last; },
    { timeoutMs, intervalMs, message: () => `${message} (last state: ${JSON.stringify(last && { ...last, tree: { ...last.tree, items: last.tree.items.slice(0, 8) } })})` });
}

/**
 * Wait until `predicate(state)` has held for `holdMs` on end (e.g. settings writes done after a
 * Stop, not just the first dump that looks stopped); returns the last state.
 */
export async function waitForSteadyState(file, predicate, { holdMs = 1500, timeoutMs, message = 'the extension state' } = {}) {
  let since = 0;
  let last = null;
  return waitFor(() => {
    last = readState(file);
    if (!last || !predicate(last)) { since = 0; return false; }
    since ||= Date.now();
    return Date.now() - since >= holdMs && last;
  }, { timeoutMs, intervalMs: 50, message: () => `${message}, for ${holdMs} ms (last state: ${JSON.stringify(last && { ...last, tree: undefined })})` });
}

/** Accept the prefilled value of the wizard's input box whose prompt matches (Enter). */
export async function acceptInput(page, prompt, { timeoutMs } = {}) {
  const shown = await waitForPrompt(page, prompt, { timeoutMs });
  await waitForQuickInput(page);
  await page.keyboard.press('Enter');
  await waitFor(async () => {
    const visible = await page.locator('.quick-input-widget').isVisible().catch(() => false);
    if (!visible) return true;
    const now = await page.locator('.quick-input-widget .quick-input-title').first().textContent().catch(() => '');
    return !shown.includes(now || '\u0000');
  }, { timeoutMs: 10_000, message: `the wizard to move on from ${prompt}` });
}

/** Pick one item in the wizard's quick pick shown with the placeholder/prompt `prompt`. */
export async function pickStep(page, label, prompt) {
  await pickItem(page, label, { prompt, filter: false });
}

/**
 * The palette's commands whose label starts with `prefix` (e.g. 'Autoresearch: '), as the user
 * sees them now (`when` clauses applied); waits until `predicate(labels)` holds, closes the palette.
 */
export async function paletteCommands(page, prefix, predicate = () => true, { timeoutMs } = {}) {
  await openPalette(page);
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.fill(`>${prefix}`);
  let last = [];
  try {
    return await waitFor(async () => {
      last = (await quickPickItems(page)).filter((l) => l.startsWith(prefix));
      return predicate(last) && last;
    }, { timeoutMs, message: () => `the palette's ${prefix}commands (shown: ${JSON.stringify(last)})` });
  } finally {
    await page.keyboard.press('Escape');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 5000 }).catch(() => {});
  }
}

/** The extension's status bar item `id` ('gpu' or 'loop'), or undefined. */
export async function statusItem(page, id) {
  return (await statusBarItems(page)).find((i) => i.id === `autoresearch.autoresearch.autoresearch.${id}` || i.id.endsWith(`.autoresearch.${id}`));
}

/**
 * A code-server session with the extension installed, the daemon's interpreter set, and the
 * state dump on: fn({...session, state, stateFile, workspace}) where state() reads the dump.
 * `settings`: user settings over the harness defaults; `env`: for code-server and so the daemon;
 * `defaultSidebar`: keep the side bar at VS Code's default width (else widened for screenshots);
 * `spare`: () => pids left running when the session closes (a detached loop).
 */
export async function withAutoresearch(name, { workspace, env = {}, settings = {}, timeoutMs, defaultSidebar = false, spare, extraVsix = [] } = {}, fn) {
  const stateDir = makeTempDir('ar-e2e-state-');
  const stateFile = path.join(stateDir, 'state.json');
  return withVSCode(name, {
    workspace,
    vsix: [vsix(), ...extraVsix], // extraVsix: test-only extensions beside ours (a chat model)
    timeoutMs,
    spare,
    env: { AUTORESEARCH_E2E_STATE: stateFile, AUTORESEARCH_E2E_HOOK: e2eHook(), ...env },
    // files.autoSave: code-server (web) saves after 1 s by default, desktop VS Code does not; off,
    // so that what a scenario types stays in the editor until it saves or reverts it.
    settings: { 'autoresearch.python': python(), 'workbench.hover.delay': 200, 'files.autoSave': 'off', ...settings },
  }, async (session) => {
    // Cosmetic (readable rows in screenshots), unless the scenario is about the default width.
    if (!defaultSidebar) await widenSidebar(session.page).catch(() => {});
    try {
      return await fn({ ...session, workspace, stateFile, state: () => readState(stateFile) });
    } catch (e) {
      const s = readState(stateFile);
      process.stderr.write(`\n==== extension state (${stateFile}) ====\n${JSON.stringify(s, null, 1)?.slice(0, 6000)}\n` +
        `==== Autoresearch log ====\n${session.logs('Autoresearch').slice(-6000)}\n`);
      throw e;
    }
  });
}

/** Drag the side bar's edge so that it is `width` pixels wide (tree rows readable in screenshots). */
export async function widenSidebar(page, width = 560) {
  const sidebar = page.locator('.part.sidebar');
  await sidebar.waitFor({ state: 'visible', timeout: 10_000 });
  const box = await sidebar.boundingBox();
  if (!box || box.width >= width) return;
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width, y);
  await page.mouse.down();
  await page.mouse.move(box.x + width, y, { steps: 4 });
  await page.mouse.up();
}

/**
 * Show the results tree as a user does: click the Autoresearch icon in the activity bar (shown
 * as soon as the extension's manifest is read; clicking it activates the extension).
 */
export async function showResults(page, { timeoutMs = 30_000 } = {}) {
  const item = page.locator('.part.activitybar li.action-item').filter({ has: page.locator('a.action-label[aria-label="Autoresearch"]') }).first();
  await item.waitFor({ timeout: timeoutMs });
  if ((await item.getAttribute('aria-selected')) !== 'true') {
    await item.click();
    await page.mouse.move(page.viewportSize().width / 2, page.viewportSize().height - 60); // no tooltip left
  }
  await viewPane(page, VIEW).waitFor({ state: 'visible', timeout: timeoutMs });
}

/** The message shown at the top of the results view (TreeView.message), '' when none. */
export async function viewMessage(page) {
  return viewPane(page, VIEW).locator('.message:not(.hide)').first().textContent({ timeout: 1000 }).then((t) => (t || '').trim(), () => '');
}

/** Wait for the results tree to show `predicate(experimentRows)`; returns all rows. */
export async function waitForExperiments(page, predicate, { timeoutMs } = {}) {
  let last = [];
  return waitFor(async () => {
    last = await treeItems(page, VIEW);
    return predicate(experimentRows(last), last) && last;
  }, { timeoutMs, message: () => `the results tree (rows: ${JSON.stringify(last.map((r) => `${r.icon} ${r.label} | ${r.description}`))})` });
}

/** Remove the temp dirs now (the harness also does at exit) unless AUTORESEARCH_E2E_KEEP=1. */
export function cleanup(...dirs) {
  if (KEEP) return;
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}

/**
 * Step timings: mark('what') logs the seconds since the scenario started, with
 * AUTORESEARCH_E2E_VERBOSE=1 (to find the slow step of a scenario).
 */
export function stepTimer(name) {
  const t0 = Date.now();
  return (what) => {
    if (process.env.AUTORESEARCH_E2E_VERBOSE === '1') console.log(`# [${name} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);
  };
}

/**
 * Click `button` on the notification whose text matches `text`: on its toast, else in the
 * notification centre (a toast hides after a while; its question is still open there).
 */
export async function clickNotificationButton(page, text, button, { timeoutMs } = {}) {
  const ok = (t) => (text instanceof RegExp ? text.test(t) : t.includes(text));
  const find = async (scope) => {
    const items = page.locator(`${scope} .notification-list-item`);
    for (let i = 0; i < await items.count(); i++) {
      const item = items.nth(i);
      const message = (await item.locator('.notification-list-item-message').textContent().catch(() => '')) || '';
      if (ok(message.trim())) return item;
    }
    return undefined;
  };
  await waitFor(async () => {
    let item = await find('.notifications-toasts');
    if (!item) {
      if (!(await page.locator('.notifications-center').isVisible().catch(() => false))) {
        await runCommand(page, 'Notifications: Show Notifications').catch(() => {});
      }
      item = await find('.notifications-center');
    }
    if (!item) return false;
    const target = item.locator('.monaco-button', { hasText: button }).first();
    if (!(await target.isVisible().catch(() => false))) return false;
    await target.click();
    return true;
  }, { timeoutMs, message: async () => `the button ${button} on the notification ${text} (toasts: ${JSON.stringify(await notifications(page).catch(() => []))})` });
}

/** The text of the notification toasts and of the notification centre's entries. */
export async function allNotifications(page) {
  return page.locator('.notification-list-item .notification-list-item-message').evaluateAll((els) => els.map((e) => (e.textContent || '').trim()));
}

/**
 * The environment of a user whose shell has no pyenv, conda or venv: the machine's only Python is
 * the system's (Debian's). The server takes the extension host's environment from the user's
 * login shell (`$SHELL -ilc env`), so PATH alone is not enough: /bin/sh reads /etc/profile (the
 * system PATH) and not ~/.bashrc, where this machine puts pyenv first.
 */
export const SYSTEM_SHELL_ENV = { SHELL: '/bin/sh', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

/** The extension's global storage in a code-server profile: the private environments live there. */
export function globalStorage(profile) {
  return path.join(profile.userDataDir, 'User', 'globalStorage', 'autoresearch.autoresearch');
}

/** Can `interpreter` import the daemon package? (A shared interpreter must stay without it.) */
export function importsAutoresearch(interpreter) {
  return spawnSync(interpreter, ['-c', 'import autoresearch'], { cwd: '/', env: { ...process.env, PYTHONPATH: '' } }).status === 0;
}
