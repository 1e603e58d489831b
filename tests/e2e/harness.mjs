// End-to-end harness: the real extension in a real VS Code (code-server), driven by
// Playwright (playwright-core) in headless Chromium. Plain ESM, no build step; runs on
// Node >= 20. Needs `bash tests/e2e/setup.sh` first (it writes $CACHE/env.json).
// API summary in tests/e2e/README.md.

import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SCREENSHOT_DIR = process.env.AUTORESEARCH_E2E_SCREENSHOTS || path.join(HERE, 'screenshots');
const KEEP = process.env.AUTORESEARCH_E2E_KEEP === '1';
const DEFAULT_TIMEOUT = Number(process.env.AUTORESEARCH_E2E_TIMEOUT_MS || 30_000);

// ---------------------------------------------------------------------------------------
// Paths and tools

let cachedPaths;
/** What setup.sh installed: {cache, node, codeServer, codeServerVersion, vscodeVersion, tools, chromium}. */
export function paths() {
  if (cachedPaths) return cachedPaths;
  const cache = process.env.AUTORESEARCH_E2E_CACHE || path.join(os.homedir(), '.cache', 'autoresearch-e2e');
  const envFile = path.join(cache, 'env.json');
  if (!fs.existsSync(envFile)) {
    throw new Error(`e2e: ${envFile} is missing: run \`bash tests/e2e/setup.sh\` first`);
  }
  cachedPaths = JSON.parse(fs.readFileSync(envFile, 'utf8'));
  return cachedPaths;
}

let cachedPlaywright;
function playwright() {
  if (!cachedPlaywright) {
    const req = createRequire(path.join(paths().tools, 'package.json'));
    cachedPlaywright = req('playwright-core');
  }
  return cachedPlaywright;
}

/** A fresh temp directory, removed when the test process exits (unless AUTORESEARCH_E2E_KEEP=1). */
export function makeTempDir(prefix = 'ar-e2e-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}
const tempDirs = new Set();

/**
 * Package an extension folder into a .vsix with @vscode/vsce (run on Node 24 from the cache).
 * Returns the .vsix path. `--no-dependencies`: bundle node_modules yourself (esbuild) first.
 */
export function packageVsix(extensionDir, outFile = path.join(extensionDir, 'extension.vsix'), extraArgs = []) {
  const { node, tools } = paths();
  const vsce = path.join(tools, 'node_modules', '@vscode', 'vsce', 'vsce');
  const r = spawnSync(node, [vsce, 'package', '--no-dependencies', '--allow-missing-repository',
    '--skip-license', '-o', outFile, ...extraArgs], { cwd: extensionDir, encoding: 'utf8', timeout: 120_000, input: '' });
  if (r.status !== 0) {
    throw new Error(`vsce package failed in ${extensionDir} (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return outFile;
}

// ---------------------------------------------------------------------------------------
// Small utilities

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A timer that does not keep the process alive (for races against a hanging close()).
const unrefSleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Poll `fn` until it returns a truthy value (returned); after timeoutMs throws naming `message`
 * (a string, or a function, possibly async, called at timeout to describe the state).
 */
export async function waitFor(fn, { timeoutMs = DEFAULT_TIMEOUT, intervalMs = 200, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      if (typeof message === 'function') message = await Promise.resolve(message()).catch((e) => `? (${e.message})`);
      throw new Error(`e2e: timed out after ${timeoutMs} ms waiting for ${message}` +
        (lastErr ? ` (last error: ${lastErr.message})` : ''));
    }
    await sleep(intervalMs);
  }
}

function processTree(rootPid) {
  // All descendants of rootPid (from /proc), so that processes that left the process group
  // (setsid / own process group) are still found.
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    for (const c of children.get(p) || []) { out.push(c); stack.push(c); }
  }
  return out;
}

/**
 * Processes started by harness sessions (code-server, extension host, daemons, their children,
 * even those that left the process group, and Chromium): every one inherits
 * AUTORESEARCH_E2E_SESSION=<profile dir> (and AUTORESEARCH_E2E_RUN=<id> under run.mjs).
 * `sessionId`: one session's id (its profile root). `{run}`: every session of one run.mjs run.
 * Returns [{pid, cmd}].
 */
export function sessionProcesses(sessionId, { run } = {}) {
  if (sessionId === undefined && run === undefined) throw new Error('sessionProcesses: give a session id or {run}');
  const want = sessionId !== undefined ? `AUTORESEARCH_E2E_SESSION=${sessionId}` : `AUTORESEARCH_E2E_RUN=${run}`;
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (!env.includes(want)) continue;
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // zombie
      out.push({ pid: Number(d), cmd: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch { /* gone or not ours */ }
  }
  return out;
}

/** SIGKILL the processes of sessionProcesses(sessionId, opts); returns what was found. */
export function killSessionProcesses(sessionId, opts) {
  const found = sessionProcesses(sessionId, opts);
  for (const { pid } of found) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  return found;
}

// Sessions not stopped yet: killed (synchronously) if the test process exits or is interrupted
// without closing them, so that an interrupted `node --test` leaves nothing behind.
const liveSessions = new Set();
function killLiveSessions() {
  for (const id of liveSessions) killSessionProcesses(id);
  liveSessions.clear();
  if (!KEEP) {
    for (const d of tempDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
    tempDirs.clear();
  }
}
process.on('exit', killLiveSessions);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killLiveSessions();
    process.kill(process.pid, sig); // default action now that our handler is gone
  });
}

/**
 * `pid` is one of `roots` or runs under one (what a spared detached loop runs is spared too);
 * true as well for a process already gone (a short git call): there is nothing left to kill.
 */
function descendsFrom(pid, roots) {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (roots.includes(p)) return true;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch { return hops === 0; }
  }
  return false;
}

const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

async function killTree(pid, { graceMs = 5000, spare = [] } = {}) {
  if (!pid) return;
  const pids = [pid, ...processTree(pid)].filter((p) => !descendsFrom(p, spare));
  const signalAll = (sig) => {
    try { process.kill(-pid, sig); } catch { /* no group */ }
    for (const p of pids) { try { process.kill(p, sig); } catch { /* gone */ } }
  };
  signalAll('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(alive)) await sleep(100);
  if (pids.some(alive)) signalAll('SIGKILL');
  const end = Date.now() + 3000;
  while (Date.now() < end && pids.some(alive)) await sleep(50);
}

// ---------------------------------------------------------------------------------------
// code-server

export const DEFAULT_SETTINGS = {
  'security.workspace.trust.enabled': false,
  'security.workspace.trust.startupPrompt': 'never',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.enableExperiments': false,
  'extensions.ignoreRecommendations': true,
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'chat.disableAIFeatures': true,
  'git.openRepositoryInParentFolders': 'never',
  'window.restoreWindows': 'none',
  'files.hotExit': 'off',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/**
 * Isolated profile: {root, userDataDir, extensionsDir, configFile, xdgDataHome}.
 * `settings` are merged over DEFAULT_SETTINGS into userDataDir/User/settings.json.
 */
export function createProfile({ settings = {}, root = makeTempDir('ar-e2e-profile-') } = {}) {
  const profile = {
    root,
    userDataDir: path.join(root, 'user-data'),
    extensionsDir: path.join(root, 'extensions'),
    configFile: path.join(root, 'code-server.yaml'),
    xdgDataHome: path.join(root, 'xdg-data'),
    tmpDir: path.join(root, 'tmp'), // TMPDIR of code-server and its children (sockets land here)
  };
  fs.mkdirSync(profile.tmpDir, { recursive: true });
  fs.mkdirSync(path.join(profile.userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(profile.extensionsDir, { recursive: true });
  fs.mkdirSync(profile.xdgDataHome, { recursive: true });
  fs.writeFileSync(profile.configFile, 'auth: none\n');
  fs.writeFileSync(path.join(profile.userDataDir, 'User', 'settings.json'),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...settings }, null, 2));
  return profile;
}

function codeServerArgs(profile) {
  return [paths().codeServer, '--config', profile.configFile, '--auth', 'none',
    '--disable-update-check', '--disable-telemetry', '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--extensions-dir', profile.extensionsDir, '--user-data-dir', profile.userDataDir];
}

/** Install a .vsix into the profile (run before startCodeServer, or reload the window after). */
export function installVsix(profile, vsixPath, { timeoutMs = 120_000 } = {}) {
  const r = spawnSync(paths().node, [...codeServerArgs(profile), '--install-extension', path.resolve(vsixPath), '--force'],
    { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, XDG_DATA_HOME: profile.xdgDataHome } });
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0 || !/successfully installed/i.test(out)) {
    throw new Error(`e2e: installing ${vsixPath} failed (status ${r.status}):\n${out}`);
  }
  return out;
}

/**
 * Start code-server on 127.0.0.1 with a free port, for `workspace` (absolute folder).
 * `env`: extra environment variables for code-server and so for the extension host.
 * Resolves to a server: {port, url, workspaceUrl, proc, profile, log(), stop()} once /healthz answers.
 */
export async function startCodeServer({ workspace, profile = createProfile(), env = {}, timeoutMs = 60_000 }) {
  workspace = path.resolve(workspace);
  let output = '';
  const proc = spawn(paths().node, [...codeServerArgs(profile), '--bind-addr', '127.0.0.1:0', workspace], {
    cwd: workspace,
    detached: true, // own process group: stop() kills the whole group
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, XDG_DATA_HOME: profile.xdgDataHome, TMPDIR: profile.tmpDir,
      AUTORESEARCH_E2E_SESSION: profile.root, ...env },
  });
  liveSessions.add(profile.root);
  const onData = (d) => { output += d.toString(); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  let exited = null;
  proc.on('exit', (code, sig) => { exited = { code, sig }; });

  const server = {
    proc, profile, workspace, port: 0, url: '', workspaceUrl: '',
    /** code-server's own stdout+stderr so far. */
    log: () => output,
    /**
     * Kill code-server's process group and every process of this session; returns strays.
     * `spare`: pids meant to outlive the session (a detached loop), left running.
     */
    async stop({ spare = [] } = {}) {
      await killTree(proc.pid, { graceMs: exited === null ? 5000 : 0, spare });
      // Anything that escaped the tree (daemonized, reparented to init) is killed too, and
      // returned so that a test can treat it as a leak.
      const strays = sessionProcesses(profile.root).filter((p) => !descendsFrom(p.pid, spare));
      for (const { pid } of strays) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      liveSessions.delete(profile.root);
      proc.stdout.destroy();
      proc.stderr.destroy();
      return strays;
    },
  };
  try {
    const m = await waitFor(() => {
      if (exited) throw new Error(`code-server exited early (${JSON.stringify(exited)})`);
      return output.match(/HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/);
    }, { timeoutMs, message: 'code-server to listen' });
    server.port = Number(m[1]);
    server.url = `http://127.0.0.1:${server.port}`;
    server.workspaceUrl = `${server.url}/?folder=${encodeURIComponent(workspace)}`;
    await waitFor(async () => (await fetch(`${server.url}/healthz`)).ok,
      { timeoutMs, message: 'code-server /healthz' });
  } catch (e) {
    await server.stop();
    e.message += `\n---- code-server output ----\n${output}`;
    throw e;
  }
  return server;
}

/** All log files under the profile's user-data-dir/logs (extension host, output channels, ...). */
export function listLogs(profile) {
  const root = path.join(profile.userDataDir, 'logs');
  const out = [];
  const walk = (d) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else if (e.name.endsWith('.log')) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

/**
 * Concatenated text of log files whose path matches `filter` (RegExp or substring), e.g.
 * readLogs(profile, /exthost/) or readLogs(profile, 'Autoresearch') for a LogOutputChannel.
 */
export function readLogs(profile, filter = /./) {
  const match = (p) => (filter instanceof RegExp ? filter.test(p) : p.includes(filter));
  return listLogs(profile).filter(match)
    .map((p) => `==== ${path.relative(profile.userDataDir, p)} ====\n${fs.readFileSync(p, 'utf8')}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------
// Browser

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--disable-crash-reporter'];

/**
 * Launch headless Chromium (fresh profile), open the workspace and wait for the workbench.
 * Returns {browser, context, page, console()} where console() is the page's console output.
 */
export async function openWorkbench(server, { timeoutMs = 60_000, viewport = { width: 1600, height: 1000 } } = {}) {
  const browser = await playwright().chromium.launch({
    executablePath: paths().chromium, headless: true, args: CHROMIUM_ARGS, timeout: timeoutMs,
    // tagged like code-server's processes, so that a leftover Chromium is found and killed too
    env: { ...process.env, AUTORESEARCH_E2E_SESSION: server.profile.root,
      XDG_CONFIG_HOME: path.join(server.profile.root, 'xdg-config') }, // Chromium's crash reports etc.
  });
  const consoleLines = [];
  try {
    const context = await browser.newContext({ viewport });
    context.setDefaultTimeout(DEFAULT_TIMEOUT);
    const page = await context.newPage();
    page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    await page.goto(server.workspaceUrl, { timeout: timeoutMs });
    await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
    // The extension host may still be starting: runCommand/focusView retry until their command
    // or view is registered, and the waitFor* helpers poll.
    await page.locator('.monaco-workbench .part.activitybar').first().waitFor({ state: 'attached', timeout: timeoutMs });
    await dismissDialogs(page);
    return { browser, context, page, console: () => consoleLines.join('\n') };
  } catch (e) {
    await browser.close().catch(() => {});
    throw e;
  }
}

/** Close modal dialogs (trust, welcome, "reload?") by pressing their cancel/close button. */
export async function dismissDialogs(page) {
  for (let i = 0; i < 3; i++) {
    const dialog = page.locator('.monaco-dialog-box');
    if (!(await dialog.isVisible().catch(() => false))) return;
    const buttons = dialog.locator('.dialog-buttons a.monaco-button, .dialog-buttons .monaco-button');
    const n = await buttons.count();
    let clicked = false;
    for (let j = 0; j < n && !clicked; j++) {
      const t = (await buttons.nth(j).innerText()).trim();
      if (/trust|yes|ok|continue/i.test(t)) { await buttons.nth(j).click(); clicked = true; }
    }
    if (!clicked) await page.keyboard.press('Escape');
    await sleep(300);
  }
}

// ---------------------------------------------------------------------------------------
// Command palette and quick input

const QI = '.quick-input-widget';
const QI_INPUT = `${QI} .quick-input-box input`;
const QI_ROWS = `${QI} .quick-input-list .monaco-list-row`;

const norm = (s) => (s || '').replace(/\s+/g, ' ').trim();

async function quickInputVisible(page) {
  return page.locator(QI).isVisible().catch(() => false);
}

/** Wait for the quick input (palette, input box or quick pick) to be shown. */
export async function waitForQuickInput(page, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  await page.locator(QI_INPUT).waitFor({ state: 'visible', timeout: timeoutMs });
}

/** Labels (first line of each row) of the quick pick items now shown. */
export async function quickPickItems(page) {
  const rows = page.locator(QI_ROWS);
  const n = await rows.count();
  const out = [];
  // The list may re-render between count() and the reads (quick open filtering its recent
  // files): a row gone meanwhile reads as '' at once instead of waiting for it.
  for (let i = 0; i < n; i++) {
    const label = await rows.nth(i).locator('.monaco-icon-label .label-name, .quick-input-list-label .label-name').first()
      .innerText({ timeout: 1000 }).catch(() => '');
    out.push(norm(label) || norm(await rows.nth(i).getAttribute('aria-label', { timeout: 1000 }).catch(() => '')));
  }
  return out;
}

/** Prompt / title / message text of the quick input now shown (to check which wizard step is up). */
export async function quickInputPrompt(page) {
  const parts = await page.locator(`${QI} .quick-input-title, ${QI} .quick-input-message, ${QI} .quick-input-box input`)
    .evaluateAll((els) => els.map((e) => (e.tagName === 'INPUT' ? (e.getAttribute('placeholder') || e.getAttribute('aria-label') || '') : e.textContent)));
  return norm(parts.join(' | '));
}

/**
 * Click the quick pick row whose label is exactly `label` (string) or matches it (RegExp).
 * With `filter: true` (default) `filterText` (default: the label when a string) is first typed
 * into the box to narrow the list; `filter: false` picks among the items as shown.
 */
export async function pickItem(page, label, { timeoutMs = DEFAULT_TIMEOUT, filter = true, filterText, prompt } = {}) {
  if (prompt !== undefined) await waitForPrompt(page, prompt, { timeoutMs });
  await waitForQuickInput(page, { timeoutMs });
  const text = filterText ?? (typeof label === 'string' ? label : undefined);
  if (filter && text !== undefined) {
    const input = page.locator(QI_INPUT);
    const current = await input.inputValue();
    const prefix = current.startsWith('>') ? '>' : '';
    await input.fill(prefix + text);
  }
  const matches = (text) => (label instanceof RegExp ? label.test(text) : norm(text) === norm(label));
  const index = await waitFor(async () => {
    const items = await quickPickItems(page);
    const i = items.findIndex(matches);
    return i >= 0 ? i + 1 : 0;
  }, { timeoutMs, message: async () => `quick pick item ${label} (items: ${JSON.stringify(await quickPickItems(page).catch(() => []))})` });
  const input = page.locator(QI_INPUT);
  const before = await input.inputValue();
  await page.locator(QI_ROWS).nth(index - 1).click();
  // Wait for the pick to close or move on, so the next step does not type into this widget.
  await waitFor(async () => !(await quickInputVisible(page)) || (await input.inputValue()) !== before,
    { timeoutMs: 5000, message: 'the quick pick to close' }).catch(() => {});
}

/**
 * Wait until the quick input's title/prompt/placeholder text contains `match` (string) or
 * matches it (RegExp); use it to be sure which wizard step is shown.
 */
export async function waitForPrompt(page, match, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  const ok = (t) => (match instanceof RegExp ? match.test(t) : t.includes(match));
  return waitFor(async () => {
    if (!(await quickInputVisible(page))) return false;
    const t = await quickInputPrompt(page);
    return ok(t) && t;
  }, { timeoutMs, message: async () => `quick input prompt ${match} (shown: ${await quickInputPrompt(page).catch(() => '')})` });
}

async function quickInputMessage(page) {
  return norm(await page.locator(`${QI} .quick-input-message`).first().textContent({ timeout: 1000 }).catch(() => ''));
}

/**
 * Type `text` into the quick input (input box) and press Enter. `prompt`: wait for that prompt
 * first (see waitForPrompt). Throws with the validation message if the input is not accepted.
 */
export async function answerInput(page, text, { timeoutMs = DEFAULT_TIMEOUT, prompt } = {}) {
  if (prompt !== undefined) await waitForPrompt(page, prompt, { timeoutMs });
  await waitForQuickInput(page, { timeoutMs });
  const input = page.locator(QI_INPUT);
  await input.fill(text);
  await waitFor(async () => (await input.inputValue()) === text, { timeoutMs: 5000, message: 'input text' });
  await input.press('Enter');
  // Accepted when the box closes or moves on (new value); still showing our text = rejected.
  try {
    await waitFor(async () => !(await quickInputVisible(page)) || (await input.inputValue()) !== text,
      { timeoutMs: 5000, message: 'the input to be accepted' });
  } catch {
    const msg = await quickInputMessage(page);
    if (msg && !/press 'enter'/i.test(msg)) throw new Error(`e2e: input "${text}" not accepted: ${msg}`);
  }
}

/** Open the command palette (F1, falling back to Ctrl+Shift+P). */
export async function openPalette(page, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await quickInputVisible(page)) { await page.keyboard.press('Escape'); await sleep(200); }
    await page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 }, force: true, trial: false }).catch(() => {});
    await page.keyboard.press(attempt % 2 === 0 ? 'F1' : 'Control+Shift+P');
    try {
      await waitFor(async () => (await quickInputVisible(page)) && (await page.locator(QI_INPUT).inputValue()).startsWith('>'),
        { timeoutMs: Math.min(timeoutMs, 5000), message: 'command palette' });
      return;
    } catch { /* retry */ }
  }
  throw new Error('e2e: the command palette did not open');
}

/**
 * Run a command by its palette label, e.g. runCommand(page, 'Autoresearch: Start Loop').
 * Waits until the command is registered (extension activated / contributions loaded).
 */
export async function runCommand(page, label, { timeoutMs = DEFAULT_TIMEOUT, filterText } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    await openPalette(page, { timeoutMs: deadline - Date.now() });
    try {
      await pickItem(page, label, { filterText, timeoutMs: Math.min(5000, Math.max(1000, deadline - Date.now())) });
      return;
    } catch (e) {
      lastErr = e; // not (yet) registered: close and retry
      await page.keyboard.press('Escape');
      await sleep(500);
    }
  }
  throw new Error(`e2e: command "${label}" not found in the palette: ${lastErr?.message}`);
}

// ---------------------------------------------------------------------------------------
// Views, trees, status bar, notifications, editors

/**
 * Show and focus a view by its name (as in "View: Open View"), e.g. focusView(page, 'Results').
 * Contributed views start collapsed; this opens its container and expands it. Waits (retrying
 * the palette) until the view is registered.
 */
export async function focusView(page, name, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  // Each view has a command "<container title>: Focus on <view name> View".
  const focus = new RegExp(`^.*: Focus on ${escapeRe(name)} View$`);
  try {
    await runCommand(page, focus, { filterText: `Focus on ${name} View`, timeoutMs });
  } catch {
    // fallback: "View: Open View" lists all views by name
    await runCommand(page, 'View: Open View', { timeoutMs: 10_000 });
    await pickItem(page, name, { timeoutMs: 10_000 });
  }
  await viewPane(page, name).waitFor({ state: 'visible', timeout: timeoutMs });
}

/** Locator of a view pane (sidebar/panel) by its title. */
export function viewPane(page, name) {
  return page.locator('.pane').filter({
    has: page.locator('.pane-header', { has: page.locator('h3.title', { hasText: new RegExp(`^\\s*${escapeRe(name)}\\s*$`, 'i') }) }),
  }).first();
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Rows of the tree in view `name`: [{label, description, level, expanded, ariaLabel, icon, badges}].
 * Only rendered rows (the tree is virtualized: scroll or make the window taller for long trees).
 * `icon`: the codicon class of the row's icon (e.g. 'codicon-pass') when it uses a ThemeIcon.
 */
export async function treeItems(page, name) {
  const pane = viewPane(page, name);
  return pane.locator('.monaco-list-row').evaluateAll((rows) => rows.map((r) => {
    const q = (sel) => r.querySelector(sel);
    const iconEl = q('.custom-view-tree-node-item-icon, .monaco-icon-label');
    const codicon = [...(r.querySelectorAll('[class*="codicon-"]'))]
      .flatMap((e) => [...e.classList]).find((c) => c.startsWith('codicon-') && c !== 'codicon-tree-item-expanded' && !c.startsWith('codicon-chevron'));
    return {
      label: (q('.label-name')?.textContent || '').trim(),
      description: (q('.label-description')?.textContent || '').trim(),
      level: Number(r.getAttribute('aria-level') || 0),
      expanded: r.getAttribute('aria-expanded') === null ? null : r.getAttribute('aria-expanded') === 'true',
      ariaLabel: r.getAttribute('aria-label') || '',
      icon: codicon || (iconEl && getComputedStyle(iconEl).backgroundImage !== 'none' ? getComputedStyle(iconEl).backgroundImage : ''),
      badges: [...r.querySelectorAll('.actions .action-label, .monaco-decoration-itemColor, .label-decoration')].map((e) => (e.textContent || e.getAttribute('aria-label') || '').trim()).filter(Boolean),
    };
  }));
}

/**
 * Wait until `predicate(items)` is truthy for treeItems(page, name); returns the items.
 * Default predicate: at least one row. E.g. waitForTree(page, 'Results', (it) => it.length >= 4).
 */
export async function waitForTree(page, name, predicate = (items) => items.length > 0, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  let last = [];
  try {
    return await waitFor(async () => { last = await treeItems(page, name); return predicate(last) && last; },
      { timeoutMs, message: `tree "${name}"` });
  } catch (e) {
    e.message += `; last rows: ${JSON.stringify(last.map((r) => `${r.label} ${r.description}`.trim()))}`;
    throw e;
  }
}

/** Locator of the tree row in view `name` whose label is `label` (string: exact; or RegExp). */
export function treeRow(page, name, label) {
  const re = label instanceof RegExp ? label : new RegExp(`^\\s*${escapeRe(label)}\\s*$`);
  return viewPane(page, name).locator('.monaco-list-row').filter({ has: page.locator('.label-name', { hasText: re }) }).first();
}

/**
 * Status bar entries: [{id, text, icons, ariaLabel}]. id is '<publisher>.<name>.<item id>' for an
 * extension's item (createStatusBarItem(id, ...)); text has no $(icon) parts, icons lists their
 * codicon classes (e.g. 'codicon-beaker').
 */
export async function statusBarItems(page) {
  return page.locator('.part.statusbar .statusbar-item').evaluateAll((els) => els.map((e) => ({
    id: e.id || '',
    text: (e.textContent || '').replace(/\s+/g, ' ').trim(),
    icons: [...e.querySelectorAll('[class*="codicon-"]')].flatMap((c) => [...c.classList]).filter((c) => c.startsWith('codicon-')),
    ariaLabel: e.getAttribute('aria-label') || e.querySelector('[aria-label]')?.getAttribute('aria-label') || '',
  })).filter((x) => x.text || x.ariaLabel));
}

/** Texts of the notification toasts now shown. */
export async function notifications(page) {
  return page.locator('.notifications-toasts .notification-toast .notification-list-item-message')
    .evaluateAll((els) => els.map((e) => (e.textContent || '').trim()));
}

/** Wait for a notification toast whose text contains `text` (string) or matches it (RegExp). */
export async function waitForNotification(page, text, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  const ok = (t) => (text instanceof RegExp ? text.test(t) : t.includes(text));
  return waitFor(async () => (await notifications(page)).find(ok),
    { timeoutMs, message: async () => `notification ${text} (shown: ${JSON.stringify(await notifications(page).catch(() => []))})` });
}

/** Dismiss all notification toasts (e.g. before waiting for a new one). */
export async function clearNotifications(page, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  await runCommand(page, 'Notifications: Clear All Notifications', { timeoutMs });
}

/** Open a workspace file by relative path through Quick Open (Ctrl+P). */
export async function openFile(page, relPath, { timeoutMs = DEFAULT_TIMEOUT } = {}) {
  if (await quickInputVisible(page)) await page.keyboard.press('Escape');
  await page.keyboard.press('Control+P');
  await waitForQuickInput(page, { timeoutMs });
  await page.locator(QI_INPUT).fill(relPath);
  const base = path.basename(relPath);
  await waitFor(async () => (await quickPickItems(page)).some((l) => l === base),
    { timeoutMs, message: `quick open to list ${relPath}` });
  await page.locator(QI_INPUT).press('Enter');
  await page.locator(`.tabs-container .tab[aria-label*="${base}"]`).first().waitFor({ timeout: timeoutMs });
}

/** Visible text lines of the active editor (or of the original/modified side of a diff editor). */
export async function editorText(page, { side } = {}) {
  const root = side ? `.monaco-diff-editor .editor.${side === 'original' ? 'original' : 'modified'}`
    : '.editor-group-container.active .monaco-editor';
  return page.locator(`${root} .view-lines`).first().evaluate((el) =>
    [...el.querySelectorAll('.view-line')]
      .map((l) => ({ top: parseFloat(l.style.top) || 0, text: l.textContent.replace(/\u00a0/g, ' ') }))
      .sort((a, b) => a.top - b.top).map((l) => l.text).join('\n'));
}

/** Frame locator of the body of the (first or titled) webview panel, e.g. for a chart. */
export function webviewFrame(page, { index = 0 } = {}) {
  return page.frameLocator('iframe.webview.ready').nth(index).frameLocator('iframe#active-frame');
}

/** Save a PNG screenshot to tests/e2e/screenshots/<name>.png; returns its path. */
export async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, '_')}.png`);
  await page.screenshot({ path: file, fullPage: false, timeout: 15_000 });
  return file;
}

// ---------------------------------------------------------------------------------------
// One-call session

/**
 * Profile + .vsix install + code-server + Chromium on the workspace.
 * opts: {workspace, vsix?: string|string[], env?, settings?, timeoutMs?, spare?: () => pids left running at close}
 * Returns a session {server, profile, browser, page, logs(filter), diagnostics(), close()}.
 */
export async function launch({ workspace, vsix = [], env = {}, settings = {}, timeoutMs = 90_000, spare = () => [] }) {
  const profile = createProfile({ settings });
  const session = { profile, server: null, browser: null, page: null, workbench: null };
  session.logs = (filter) => readLogs(profile, filter);
  session.diagnostics = () => [
    '---- code-server output (tail) ----', (session.server?.log() || '').slice(-8000),
    '---- browser console (tail) ----', (session.workbench?.console() || '').slice(-8000),
    '---- extension host logs (tail) ----', readLogs(profile, /exthost|remoteagent|output_/).slice(-12000),
  ].join('\n');
  let closed;
  /** Close Chromium, stop code-server and all its processes; resolves to the strays killed. */
  session.close = () => {
    closed ??= (async () => {
      if (session.browser) await Promise.race([session.browser.close().catch(() => {}), unrefSleep(10_000)]);
      const strays = session.server ? await session.server.stop({ spare: spare() }) : killSessionProcesses(profile.root);
      if (strays.length) {
        process.stderr.write(`e2e: killed ${strays.length} process(es) that outlived code-server:\n` +
          strays.map((p) => `  ${p.pid} ${p.cmd}`).join('\n') + '\n');
      }
      if (!KEEP) fs.rmSync(profile.root, { recursive: true, force: true });
      return strays;
    })();
    return closed;
  };
  try {
    for (const v of [].concat(vsix)) installVsix(profile, v);
    session.server = await startCodeServer({ workspace, profile, env, timeoutMs });
    session.workbench = await openWorkbench(session.server, { timeoutMs });
    session.browser = session.workbench.browser;
    session.page = session.workbench.page;
  } catch (e) {
    e.message += `\n${session.diagnostics()}`;
    await session.close();
    throw e;
  }
  return session;
}

/**
 * Run `fn(session)` in a fresh session; on failure save a screenshot `<name>-failure.png` and
 * print code-server / browser / extension host logs to stderr; always close everything.
 */
export async function withVSCode(name, opts, fn) {
  const session = await launch(opts);
  try {
    return await fn(session);
  } catch (e) {
    if (session.page) await screenshot(session.page, `${name}-failure`).catch(() => {});
    process.stderr.write(`\n==== e2e diagnostics for ${name} ====\n${session.diagnostics()}\n`);
    throw e;
  } finally {
    await session.close();
  }
}
