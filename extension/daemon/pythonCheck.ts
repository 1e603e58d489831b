// Where the daemon may come from, without VS Code: a workspace holding this project, the wheel in
// the .vsix, a workspace .venv. python.ts asks the user; tests call these directly.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkoutSource, wheelSource, type DaemonSource } from "./daemonInstall";

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
