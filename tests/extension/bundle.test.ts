// The shipped bundle leaves the e2e state dump out; the e2e suite's hook, built on its own, is
// loaded through the extension's probe and writes the dump.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import * as esbuild from "esbuild";
import { loadTestHook, type Probe } from "../../extension/testHook";

test("dist/extension.js as the .vsix gets it has no state dump in it", async () => {
  const result = await esbuild.build({
    entryPoints: ["extension/extension.ts"],
    bundle: true,
    write: false,
    platform: "node",
    format: "cjs",
    external: ["vscode"],
    minify: true,
    logLevel: "silent",
  });
  const text = result.outputFiles[0]!.text;
  assert.ok(text.includes("AUTORESEARCH_E2E_HOOK"), "the seam is there");
  assert.ok(!text.includes("AUTORESEARCH_E2E_STATE"), "the dump (which reads AUTORESEARCH_E2E_STATE) is not");
});

test("the hook, built as the e2e suite builds it, dumps what the probe shows", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ar-hook-"));
  const hook = join(dir, "hook.js");
  await esbuild.build({ entryPoints: ["tests/e2e/hook/hook.ts"], bundle: true, outfile: hook, platform: "node", format: "cjs", logLevel: "silent" });
  const stateFile = join(dir, "state.json");
  process.env.AUTORESEARCH_E2E_STATE = stateFile;
  const listeners: ((m: { severity: "info" | "warning" | "error"; text: string }) => void)[] = [];
  const probe: Probe = {
    daemon: () => "ready",
    root: () => "/r",
    loop: () => ({ phase: "running", mode: "loop" }),
    tree: async () => ({ session: undefined, items: [] }),
    statusBar: () => ({ gpu: "", gpuTooltip: "", gpuWarning: false, loop: "$(sync~spin) Running #1" }),
    locks: () => ({ locked: ["train.py"], offLimits: [], readonlyInclude: null }),
    chart: () => ({ open: false, points: 0, reduced: false }),
    changed: [],
    onMessage: (f) => (listeners.push(f), { dispose() {} }),
    onNotification: () => ({ dispose() {} }),
  };
  assert.equal(loadTestHook(probe, undefined), undefined, "no variable, no hook");
  const handle = loadTestHook(probe, hook)!;
  listeners.forEach((f) => f({ severity: "info", text: "hello" }));
  await new Promise((r) => setTimeout(r, 300));
  handle.flush();
  handle.dispose();
  delete process.env.AUTORESEARCH_E2E_STATE;
  const written = JSON.parse(readFileSync(stateFile, "utf-8"));
  assert.equal(written.statusBar.loop, "$(sync~spin) Running #1");
  assert.deepEqual(written.locks.locked, ["train.py"]);
  assert.equal(written.lastMessage.text, "hello");
});
