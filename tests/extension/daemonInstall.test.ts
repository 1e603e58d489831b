// The daemon's private environment with real interpreters, real `python -m venv` and real pip:
// a tiny wheel named `autoresearch` (built here with zipfile, no dependencies, so pip needs no
// index) stands for the daemon.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  installPrivate,
  lastError,
  probePython,
  readStamp,
  runner,
  venvDir,
  venvFailure,
  wheelSource,
  type Probe,
  type Run,
} from "../../extension/daemon/daemonInstall";
import { python, repoRoot } from "./helpers";

// Debian's interpreter when the machine has it (PEP 668: externally managed), as on the GPU boxes.
const DEBIAN = "/usr/bin/python3";
const base = existsSync(DEBIAN) ? DEBIAN : python();

const WHEEL_SCRIPT = `
import sys, zipfile
out, version, requires = sys.argv[1], sys.argv[2], sys.argv[3:]
info = f"autoresearch-{version}.dist-info"
files = {
    "autoresearch/__init__.py": f"__version__ = {version!r}\\n",
    f"{info}/METADATA": "Metadata-Version: 2.1\\nName: autoresearch\\nVersion: " + version + "\\n"
        + "".join(f"Requires-Dist: {r}\\n" for r in requires),
    f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
with zipfile.ZipFile(out, "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
    z.writestr(f"{info}/RECORD", "".join(f"{n},,\\n" for n in files) + f"{info}/RECORD,,\\n")
`;

/** A wheel of a package `autoresearch` at `version`, in its own folder (the .vsix's dist/python). */
function tinyWheel(version: string, requires: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), "ar-wheel-"));
  const wheel = join(dir, `autoresearch-${version}-py3-none-any.whl`);
  execFileSync(python(), ["-c", WHEEL_SCRIPT, wheel, version, ...requires]);
  return wheel;
}

async function baseProbe(interpreter: string): Promise<Probe> {
  const probed = await probePython(interpreter);
  assert.ok(probed.ok, JSON.stringify(probed));
  return probed.probe;
}

/** A runner that logs, and remembers each command line it ran. */
function recording(env?: NodeJS.ProcessEnv): { run: Run; commands: string[][]; lines: string[] } {
  const commands: string[][] = [];
  const lines: string[] = [];
  const inner = runner((line) => lines.push(line), env);
  return {
    commands,
    lines,
    run: (command, args) => {
      commands.push([command, ...args]);
      return inner(command, args);
    },
  };
}

test("the probe says where an interpreter really is, its version, and whether it imports the daemon", async () => {
  const probe = await baseProbe(base);
  assert.match(probe.version, /^3\.\d+\.\d+$/);
  assert.ok(existsSync(probe.executable));
  const missing = await probePython("/nonexistent/python3");
  assert.equal(missing.ok, false);
});

test("the daemon goes into a private environment made with the interpreter, which stays unchanged; reused; updated when the wheel changes", { timeout: 300_000 }, async () => {
  const probe = await baseProbe(base);
  const storage = mkdtempSync(join(tmpdir(), "ar-storage-"));
  const first = wheelSource(tinyWheel("0.0.1"));
  const one = recording();
  const installed = await installPrivate(probe, storage, first, one.run);
  assert.ok(installed.ok, JSON.stringify(installed) + one.lines.join("\n"));
  const dir = venvDir(storage, probe.version);
  assert.equal(installed.python, join(dir, "bin", "python"));
  assert.equal(installed.upgraded, false);
  assert.deepEqual(one.commands[0], [probe.executable, "-m", "venv", dir]);
  assert.equal((await baseProbe(installed.python)).autoresearch, "0.0.1");
  assert.equal(readStamp(dir)?.source, first.id);
  assert.equal(readStamp(dir)?.createdWith, probe.executable);
  if (base === DEBIAN) {
    assert.equal((await baseProbe(base)).autoresearch, undefined, "nothing installed into the shared interpreter");
  }

  const again = recording();
  const reused = await installPrivate(probe, storage, first, again.run);
  assert.ok(reused.ok);
  assert.deepEqual(again.commands, [], "an environment holding this daemon is reused as it is");

  const second = wheelSource(tinyWheel("0.0.2"));
  const update = recording();
  const updated = await installPrivate(probe, storage, second, update.run);
  assert.ok(updated.ok, update.lines.join("\n"));
  assert.equal(updated.upgraded, true);
  assert.ok(!update.commands.some((c) => c.includes("venv")), "the environment itself is kept");
  assert.equal((await baseProbe(updated.python)).autoresearch, "0.0.2");
  assert.equal(readStamp(dir)?.source, second.id);
});

test("an interpreter that cannot make environments (Debian without python3-venv): the reason and the fix, nothing left behind", { timeout: 120_000 }, async (t) => {
  if (!existsSync(DEBIAN)) return t.skip("needs Debian's /usr/bin/python3");
  const root = mkdtempSync(join(tmpdir(), "ar-novenv-"));
  const made = spawnSync("bash", [join(repoRoot(), "tests", "e2e", "fixtures", "python-without-venv.sh"), root], {
    encoding: "utf-8",
  });
  assert.equal(made.status, 0, made.stderr);
  const interpreter = made.stdout.trim();
  const probe = await baseProbe(interpreter);
  const storage = mkdtempSync(join(tmpdir(), "ar-storage-"));
  const result = await installPrivate(probe, storage, wheelSource(tinyWheel("0.0.1")), recording().run);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.kind, "no-venv");
  assert.equal(
    !result.ok && result.message,
    `Python at ${probe.executable} cannot create virtual environments: install python3-venv (sudo apt install python3-venv), ` +
      "or set autoresearch.python to an interpreter with the autoresearch package.",
  );
  assert.deepEqual(readdirSync(storage), [], "no half-made environment");
});

test("pip that cannot get a dependency: its own error line and the way forward", { timeout: 300_000 }, async () => {
  const probe = await baseProbe(base);
  const storage = mkdtempSync(join(tmpdir(), "ar-storage-"));
  // No index and an empty find-links folder: what a machine without PyPI sees.
  const empty = mkdtempSync(join(tmpdir(), "ar-noindex-"));
  const env = { ...process.env, PIP_NO_INDEX: "1", PIP_FIND_LINKS: empty, PIP_EXTRA_INDEX_URL: "" };
  const source = wheelSource(tinyWheel("0.0.1", ["autoresearch-test-dependency-that-does-not-exist>=1"]));
  const result = await installPrivate(probe, storage, source, recording(env).run);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.kind, "pip-index");
  const dir = venvDir(storage, probe.version);
  assert.match(
    !result.ok ? result.message : "",
    new RegExp(
      `^pip could not download the daemon's dependencies into ${dir.replace(/[.]/g, "\\.")}: ` +
        "No matching distribution found for autoresearch-test-dependency-that-does-not-exist>=1\\. " +
        "This machine must reach PyPI \\(or the index set in pip\\.conf\\); fix that, then Retry\\.$",
    ),
  );
  assert.equal(readStamp(dir), undefined, "no stamp: the next start tries again");
});

test("failure wording: pip's ERROR line wins over its hints; any other venv error is quoted", () => {
  const output = "Collecting x\nERROR: Could not find a version that satisfies the requirement x (from versions: none)\nERROR: No matching distribution found for x\n";
  assert.equal(lastError(output), "No matching distribution found for x");
  const other = venvFailure("/opt/py/bin/python3", "Error: [Errno 13] Permission denied: '/root/x'\n");
  assert.equal(other.kind, "venv");
  assert.match(other.message, /^Python at \/opt\/py\/bin\/python3 could not create the daemon's environment: Error: \[Errno 13\] Permission denied/);
});
