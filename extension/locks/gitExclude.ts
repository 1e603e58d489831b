// Keeps a file the extension created (the `.vscode/settings.json` that holds the loop's locks)
// out of `git status` while it exists: one marked entry in the repository's `.git/info/exclude`
// (never the user's .gitignore), taken out again with the file. No vscode import.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";

const MARK = "# autoresearch: a file it created for the loop's editor locks (removed when the loop ends)";

function git(folder: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("git", args, { cwd: folder, windowsHide: true }, (error, stdout) => resolve(error ? undefined : stdout.trim()));
  });
}

/** The exclude file of the repository holding `folder` (worktrees share the main one's). */
async function excludeFile(folder: string): Promise<string | undefined> {
  const path = await git(folder, ["rev-parse", "--git-path", "info/exclude"]);
  if (!path) return undefined;
  return isAbsolute(path) ? path : join(folder, path);
}

function read(file: string): string {
  return existsSync(file) ? readFileSync(file, "utf-8") : "";
}

/**
 * Exclude `relative` (a path under `folder`) unless git tracks or ignores it already. Returns
 * whether an entry was added.
 */
export async function excludeCreated(folder: string, relative: string): Promise<boolean> {
  const file = await excludeFile(folder);
  if (!file) return false; // not a git repository: nothing shows up anywhere
  if ((await git(folder, ["ls-files", "--", relative])) !== "") return false; // tracked (or git failed)
  if ((await git(folder, ["check-ignore", "-q", "--", relative])) !== undefined) return false; // ignored already
  const prefix = (await git(folder, ["rev-parse", "--show-prefix"])) ?? "";
  const entry = `/${prefix}${relative}`.replace(/\\/g, "/");
  const text = read(file);
  if (text.includes(`${MARK}\n${entry}\n`)) return true;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${text}${text && !text.endsWith("\n") ? "\n" : ""}${MARK}\n${entry}\n`);
  return true;
}

/** Take out every entry `excludeCreated` added (each with its mark); the rest stays as it was. */
export async function removeExcludes(folder: string): Promise<void> {
  const file = await excludeFile(folder);
  if (!file || !existsSync(file)) return;
  const text = read(file);
  if (!text.includes(MARK)) return;
  const lines = text.split("\n");
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === MARK) {
      i += 1; // and its entry
      continue;
    }
    kept.push(lines[i]!);
  }
  writeFileSync(file, kept.join("\n"));
}
