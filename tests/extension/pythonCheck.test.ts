import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { probePython } from "../../extension/daemon/daemonInstall";
import { daemonSource, findBundledWheel, folderVenvPython, isAutoresearchProject } from "../../extension/daemon/pythonCheck";
import { python, pythonEnv, repoRoot } from "./helpers";

test("this repository's pyproject is recognised; others are not", () => {
  assert.ok(isAutoresearchProject('[project]\nname = "autoresearch"\nversion = "0.1.0"\n'));
  assert.ok(!isAutoresearchProject('[project]\nname = "autoresearch-x"\n'));
  assert.ok(!isAutoresearchProject('[tool.x]\nname = "autoresearch"\n[project]\nname = "other"\n'));
});

test("what gets installed: a workspace holding the project (editable), else the bundled wheel", () => {
  const extension = mkdtempSync(join(tmpdir(), "ar-ext-"));
  assert.deepEqual(daemonSource([repoRoot()], extension), {
    kind: "checkout",
    path: repoRoot(),
    id: `editable:${repoRoot()}`,
  });
  const other = mkdtempSync(join(tmpdir(), "ar-other-"));
  writeFileSync(join(other, "pyproject.toml"), '[project]\nname = "other"\n');
  assert.equal(daemonSource([other], extension), undefined, "never a same-named package from PyPI");
  assert.equal(findBundledWheel(extension), undefined);
  mkdirSync(join(extension, "dist", "python"), { recursive: true });
  const wheel = join(extension, "dist", "python", "autoresearch-0.1.0-py3-none-any.whl");
  writeFileSync(wheel, "one build");
  assert.equal(findBundledWheel(extension), wheel);
  const first = daemonSource([other], extension);
  assert.equal(first?.kind, "wheel");
  assert.equal(first?.path, wheel);
  writeFileSync(wheel, "another build of the same version");
  assert.notEqual(daemonSource([other], extension)?.id, first?.id, "a rebuilt wheel is a new daemon");
});

test("a workspace .venv is found", () => {
  const folder = mkdtempSync(join(tmpdir(), "ar-venv-"));
  assert.equal(folderVenvPython(folder), undefined);
  mkdirSync(join(folder, ".venv", "bin"), { recursive: true });
  writeFileSync(join(folder, ".venv", "bin", "python"), "");
  assert.equal(folderVenvPython(folder, "linux"), join(folder, ".venv", "bin", "python"));
});

test("the probe tells a missing interpreter from a missing package", async () => {
  const missing = await probePython("/nonexistent/python3");
  assert.equal(missing.ok, false);
  const bare = await probePython(python(), { env: { ...process.env, PYTHONPATH: "", PYTHONNOUSERSITE: "1" }, cwd: tmpdir() });
  assert.ok(bare.ok, JSON.stringify(bare));
  const ok = await probePython(python(), { env: pythonEnv() });
  assert.ok(ok.ok && ok.probe.autoresearch, JSON.stringify(ok));
});
