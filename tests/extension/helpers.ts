// Shared by the extension's unit tests: where the repository is and which Python runs the daemon.
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";

/** The repository root: the nearest folder above this file with package.json and extension/. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!(existsSync(join(dir, "package.json")) && existsSync(join(dir, "extension")))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no repository root above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

/** The interpreter with the `autoresearch` package: $AUTORESEARCH_PYTHON, else .venv/bin/python. */
export function python(): string {
  const configured = process.env.AUTORESEARCH_PYTHON ?? ".venv/bin/python";
  return isAbsolute(configured) || !configured.includes("/")
    ? configured
    : resolve(repoRoot(), configured);
}

/** The environment for a daemon started from the source tree (server/ importable). */
export function pythonEnv(): NodeJS.ProcessEnv {
  const server = join(repoRoot(), "server");
  const path = process.env.PYTHONPATH ? `${server}:${process.env.PYTHONPATH}` : server;
  return { ...process.env, PYTHONPATH: path, PYTHONUNBUFFERED: "1" };
}
