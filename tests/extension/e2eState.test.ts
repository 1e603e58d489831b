import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StateDump, startDump, type DumpSources } from "../e2e/hook/e2eState";

const sources = (items: number): DumpSources => ({
  daemon: () => "ready",
  root: () => "/r",
  loop: () => ({ phase: "running", mode: "loop" }),
  tree: async () => ({
    session: null,
    items: Array.from({ length: items }, (_, i) => ({ label: `#${i}`, description: "", icon: "pass-filled", contextValue: "x" })),
  }),
  statusBar: () => ({ gpu: "$(circle-slash) No GPU", gpuTooltip: "", gpuWarning: false, loop: "" }),
  locks: () => ({ locked: ["train.py"], offLimits: [], readonlyInclude: { "train.py": true } }),
  chart: () => ({ open: false, points: 0 }),
});

test("without the variable nothing is written", () => {
  const dump = new StateDump(undefined);
  dump.update({ daemon: "ready" });
  dump.flush();
  assert.equal(dump.enabled, false);
});

test("with a path, each change is collected and written as JSON", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "ar-dump-")), "sub", "state.json");
  const dump = new StateDump(path, 1);
  let fire: () => void = () => {};
  const handle = startDump(dump, sources(2), [(listener) => ((fire = listener), { dispose() {} })]);
  await new Promise((r) => setTimeout(r, 120));
  let written = JSON.parse(readFileSync(path, "utf-8"));
  assert.equal(written.tree.items.length, 2);
  assert.deepEqual(written.locks.locked, ["train.py"]);
  assert.equal(written.statusBar.gpu, "$(circle-slash) No GPU");
  dump.update({ lastNotification: { method: "autoresearch/stateChanged", at: "now" } });
  fire();
  await new Promise((r) => setTimeout(r, 120));
  written = JSON.parse(readFileSync(path, "utf-8"));
  assert.equal(written.lastNotification.method, "autoresearch/stateChanged");
  assert.ok(written.writes >= 2);
  assert.ok(!existsSync(`${path}.${process.pid}.tmp`));
  handle.dispose();
});
