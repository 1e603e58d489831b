// The GPU status bar item: figures from the daemon's fake GPU source (AUTORESEARCH_FAKE_GPU in
// code-server's environment, inherited by the extension host and the daemon it spawns), updated
// when the values change (the file replaced atomically); then, with the source taken away
// (autoresearch.daemon.env set in the workspace settings, which restarts the daemon), the
// no-GPU text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, screenshot, waitFor } from '../harness.mjs';
import { allNotifications, makeDemoRepo, statusItem, stepTimer, waitForState, withAutoresearch } from '../autoresearch.mjs';

/** protocol.GpuStatus with one GPU. */
function gpuStatus({ utilization, used, temperature }) {
  return {
    available: true,
    message: '1 fake GPU',
    gpus: [{
      index: 0, name: 'Fake H100 80GB', utilization, memory_used_mib: used, memory_total_mib: 81559,
      temperature_c: temperature, power_w: 312, processes: [{ pid: 4242, used_mib: used, name: 'python' }],
    }],
  };
}

/** Replace the file atomically (a new inode: the daemon's stat check notices even a same-size write). */
function writeAtomically(file, value) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value));
  fs.renameSync(tmp, file);
}

const hasNvidia = () => fs.existsSync('/dev/nvidiactl') || fs.existsSync('/proc/driver/nvidia');

test('gpu status bar: fake GPU figures, live updates, no-GPU text without a source', { timeout: 240_000 }, async () => {
  const workspace = makeDemoRepo(); // autoresearch.toml: the extension activates at startup
  const gpuFile = path.join(makeTempDir('ar-e2e-gpu-'), 'gpu.json');
  writeAtomically(gpuFile, gpuStatus({ utilization: 37, used: 20480, temperature: 61 }));
  const mark = stepTimer('gpu');

  await withAutoresearch('gpu-status', { workspace, env: { AUTORESEARCH_FAKE_GPU: gpuFile } }, async ({ page, stateFile }) => {
    // Without any command: the status bar shows the fake GPU (utilisation, memory, temperature).
    const shown = async (re) => {
      let item;
      await waitFor(async () => { item = await statusItem(page, 'gpu'); return item && re.test(item.text); },
        { message: () => `the GPU status bar item to match ${re} (shown: ${JSON.stringify(item)})` });
      return item;
    };
    const first = await shown(/^37% 20\.0 GB\/79\.6 GB 61°C$/);
    assert.deepEqual(first.icons, ['codicon-pulse']);
    const state = await waitForState(stateFile, (s) => /37%/.test(s.statusBar.gpu));
    assert.match(state.statusBar.gpuTooltip, /GPU 0 Fake H100 80GB: 37% · 20\.0 GB\/79\.6 GB · 61°C · 312 W/);
    assert.equal(state.statusBar.gpuWarning, false);
    mark('fake GPU shown');
    await screenshot(page, 'gpu-status');

    // New values: the item follows (the daemon polls at ~1 Hz and pushes gpuStatus).
    writeAtomically(gpuFile, gpuStatus({ utilization: 98, used: 79000, temperature: 83 }));
    await shown(/^98% 77\.1 GB\/79\.6 GB 83°C$/);
    // Memory nearly full: the warning background.
    await waitForState(stateFile, (s) => /98%/.test(s.statusBar.gpu) && s.statusBar.gpuWarning === true);
    const background = await page.locator('.part.statusbar .statusbar-item.warning-kind, .part.statusbar .statusbar-item[class*="warning"]').count();
    assert.ok(background > 0, 'a warning-coloured status bar item');
    mark('updated');
    await screenshot(page, 'gpu-status-updated');

    // A click lists each GPU with its processes.
    const item = await statusItem(page, 'gpu');
    await page.locator(`[id="${item.id}"]`).click();
    const details = await waitFor(async () => {
      const rows = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').allTextContents();
      return rows.length && rows;
    }, { message: 'the GPU details quick pick' });
    assert.equal(details.length, 1);
    assert.match(details[0], /GPU 0: Fake H100 80GB/);
    assert.match(details[0], /98% · 77\.1 GB\/79\.6 GB · 83°C · 312 W/);
    assert.match(details[0], /Processes: python 4242: 77\.1 GB/);
    await page.keyboard.press('Escape');

    // No source: the daemon restarts on the setting change and reads NVML, absent here.
    if (hasNvidia()) return; // a real GPU answers NVML: the no-GPU text cannot be shown here
    fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'),
      JSON.stringify({ 'autoresearch.daemon.env': { AUTORESEARCH_FAKE_GPU: '' } }, null, 2));
    const none = await shown(/^No GPU$/);
    assert.deepEqual(none.icons, ['codicon-circle-slash']);
    const after = await waitForState(stateFile, (s) => s.statusBar.gpu.includes('No GPU') && s.daemon === 'ready');
    assert.equal(after.statusBar.gpuWarning, false);
    assert.ok(after.statusBar.gpuTooltip.length > 0, 'the tooltip says why');
    // In plain words: NVML's "Shared Library Not Found" means no NVIDIA driver here.
    assert.doesNotMatch(after.statusBar.gpuTooltip, /Shared Library Not Found/);
    if (/NVML/.test(after.statusBar.gpuTooltip)) assert.match(after.statusBar.gpuTooltip, /^No NVIDIA driver found on this machine/);
    // The restart the setting caused is announced.
    await waitFor(async () => (await allNotifications(page)).includes('Autoresearch: the daemon restarted with the new settings.'),
      { message: async () => `the restart announced (shown: ${JSON.stringify(await allNotifications(page))})` });
    // Clicking the item says the same.
    await page.locator('.part.statusbar .statusbar-item', { hasText: 'No GPU' }).first().click();
    await waitFor(async () => (await allNotifications(page)).includes(`Autoresearch: ${after.statusBar.gpuTooltip}`),
      { message: async () => `the GPU item's message (shown: ${JSON.stringify(await allNotifications(page))})` });
    mark('no GPU');
    await screenshot(page, 'gpu-status-none');
  });
});
