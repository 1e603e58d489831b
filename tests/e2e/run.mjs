#!/usr/bin/env node
// Runs the end-to-end scenarios (tests/e2e/scenarios/*.test.mjs) one at a time with Node's
// built-in test runner. Usage: node tests/e2e/run.mjs [substring ...]   (filters file names)
// Needs `bash tests/e2e/setup.sh` first. Exits non-zero when a test fails or none ran, and when
// a scenario left a process behind.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killSessionProcesses, paths, sessionProcesses } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, 'scenarios');
const filters = process.argv.slice(2);
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.mjs'))
  .filter((f) => !filters.length || filters.some((x) => f.includes(x))).sort()
  .map((f) => path.join(dir, f));

try {
  paths();
} catch (e) {
  console.error(e.message);
  process.exit(2);
}
if (!files.length) {
  console.error(`e2e: no scenario matches ${filters.join(' ')} in ${dir}`);
  process.exit(2);
}

const tap = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ar-e2e-run-')), 'results.tap');
const t0 = Date.now();
const runId = randomUUID(); // inherited by every process the scenarios start: see sessionProcesses
console.log(`e2e: ${files.length} scenario file(s): ${files.map((f) => path.basename(f)).join(', ')}`);
const child = spawn(process.execPath, [
  '--test', '--test-concurrency=1', '--test-timeout=900000',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...files,
], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, AUTORESEARCH_E2E_RUN: runId } });
const stop = (sig) => child.kill(sig);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1))));

const text = fs.existsSync(tap) ? fs.readFileSync(tap, 'utf8') : '';
const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) || [])[1] || 0);
const passed = count('pass');
const failed = count('fail') + count('cancelled');
const skipped = count('skipped') + count('todo');
fs.rmSync(path.dirname(tap), { recursive: true, force: true });

// Give processes of an interrupted test a moment to clean up, then kill what is left.
const graceEnd = Date.now() + 10_000;
while (Date.now() < graceEnd && sessionProcesses(undefined, { run: runId }).length) {
  await new Promise((r) => setTimeout(r, 200));
}
const strays = killSessionProcesses(undefined, { run: runId });
if (strays.length) {
  console.error(`e2e: ${strays.length} process(es) left behind by the scenarios (killed now):`);
  for (const p of strays) console.error(`  ${p.pid} ${p.cmd}`);
}
console.log(`e2e: finished in ${((Date.now() - t0) / 1000).toFixed(1)}s; screenshots in ${path.relative(process.cwd(), path.join(here, 'screenshots')) || '.'}`);
console.log(`e2e: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
const ok = code === 0 && failed === 0 && passed > 0 && strays.length === 0;
process.exit(ok ? 0 : (code || 1));
