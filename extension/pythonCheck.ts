// Checks on a Python interpreter, without VS Code: does it run, can it import the daemon package,
// and what would be installed. python.ts asks the user; tests call these directly.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkoutSource, wheelSource, type DaemonSource } from "./daemonInstall";

export type ImportCheck =
  | { ok: true; version: string }
  | { ok: false; reason: "no-python" | "no-package"; detail: string };

const PROBE =
  "import sys\ntry:\n import autoresearch\nexcept ImportError as e:\n print('missing:' + str(e)); sys.exit(3)\n" +
  "print(getattr(autoresearch, '__version__', '') or 'ok')";

/** Run `python -c PROBE`: tells a missing interpreter from a missing package. */
export function checkImport(
  python: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ImportCheck> {
  return new Promise((resolve) => {
    execFile(
      python,
      ["-c", PROBE],
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 30_000, windowsHide: true },
      (error, stdout, stderr) => {
        if (!error) return resolve({ ok: true, version: stdout.trim() });
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "EACCES") {
          return resolve({ ok: false, reason: "no-python", detail: `${python}: ${error.message}` });
        }
        if (stdout.startsWith("missing:")) {
          return resolve({ ok: false, reason: "no-package", detail: stdout.slice(8).trim() });
        }
        resolve({ ok: false, reason: "no-python", detail: (stderr || error.message).trim() });
      },
    );
  });
}

/** Does this pyproject.toml declare the `autoresearch` project (this repository's daemon)? */
export function isAutoresearchProject(pyproject: string): boolean {
  const section = /^\[project\]\s*$([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(pyproject);
  return !!section && /^\s*name\s*=\s*["']autoresearch["']\s*$/m.test(section[1] ?? "");
}

/**
 * What the private environment gets: a workspace holding this project (editable, for its
 * developers), else the daemon wheel inside the .vsix; never a same-named package from an index.
 */
export function daemonSource(folders: readonly string[], extensionPath: string): DaemonSource | undefined {
  for (const folder of folders) {
    const path = join(folder, "pyproject.toml");
    if (existsSync(path) && isAutoresearchProject(readFileSync(path, "utf-8"))) return checkoutSource(folder);
  }
  const wheel = findBundledWheel(extensionPath);
  return wheel ? wheelSource(wheel) : undefined;
}

/** The daemon wheel that `npm run package` puts in dist/python/, if this build has one. */
export function findBundledWheel(extensionPath: string): string | undefined {
  const dir = join(extensionPath, "dist", "python");
  if (!existsSync(dir)) return undefined;
  const wheel = readdirSync(dir).find((f) => f.startsWith("autoresearch-") && f.endsWith(".whl"));
  return wheel ? join(dir, wheel) : undefined;
}

/** The interpreter of a virtual environment in the folder, if there is one. */
export function folderVenvPython(folder: string, platform = process.platform): string | undefined {
  for (const venv of [".venv", "venv"]) {
    const path =
      platform === "win32" ? join(folder, venv, "Scripts", "python.exe") : join(folder, venv, "bin", "python");
    if (existsSync(path)) return path;
  }
  return undefined;
}
