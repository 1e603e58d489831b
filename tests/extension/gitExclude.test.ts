// The settings file the locks create stays out of `git status` while it exists, in a real
// repository: the entry goes into .git/info/exclude and comes out again, the rest untouched.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { excludeCreated, removeExcludes } from "../../extension/locks/gitExclude";

function repo(): string {
  const dir = mkdtempSync(join(tmpdir(), "ar-exclude-"));
  execFileSync("git", ["init", "-q", dir]);
  return dir;
}

const status = (dir: string) => execFileSync("git", ["status", "--porcelain", "--untracked-files=all"], { cwd: dir, encoding: "utf-8" });

test("a settings file made for the locks is excluded while it exists, and the exclude file is restored", async () => {
  const dir = repo();
  const exclude = join(dir, ".git", "info", "exclude");
  const before = readFileSync(exclude, "utf-8");
  assert.equal(await excludeCreated(dir, join(".vscode", "settings.json")), true);
  mkdirSync(join(dir, ".vscode"));
  writeFileSync(join(dir, ".vscode", "settings.json"), '{ "files.readonlyInclude": { "train.py": true } }');
  assert.equal(status(dir), "", "git status shows nothing while the loop holds the lock");
  rmSync(join(dir, ".vscode"), { recursive: true });
  await removeExcludes(dir);
  assert.equal(readFileSync(exclude, "utf-8"), before, "the exclude file as it was");
});

test("a tracked or ignored settings file is left to git", async () => {
  const tracked = repo();
  mkdirSync(join(tracked, ".vscode"));
  writeFileSync(join(tracked, ".vscode", "settings.json"), "{}");
  execFileSync("git", ["add", "-A"], { cwd: tracked });
  assert.equal(await excludeCreated(tracked, join(".vscode", "settings.json")), false);
  const ignored = repo();
  writeFileSync(join(ignored, ".gitignore"), ".vscode/\n");
  assert.equal(await excludeCreated(ignored, join(".vscode", "settings.json")), false);
  assert.doesNotMatch(readFileSync(join(ignored, ".git", "info", "exclude"), "utf-8"), /autoresearch/);
});

test("a workspace folder below the repository's top gets an entry for its own path", async () => {
  const dir = repo();
  const sub = join(dir, "project");
  mkdirSync(sub);
  assert.equal(await excludeCreated(sub, join(".vscode", "settings.json")), true);
  assert.match(readFileSync(join(dir, ".git", "info", "exclude"), "utf-8"), /^\/project\/\.vscode\/settings\.json$/m);
  await removeExcludes(sub);
  assert.doesNotMatch(readFileSync(join(dir, ".git", "info", "exclude"), "utf-8"), /^\/project\//m);
});
