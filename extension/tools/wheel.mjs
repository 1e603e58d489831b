// Builds the daemon (the Python package in server/) as a wheel into dist/python/, so the .vsix
// carries the exact daemon it was built with and can offer to install it where it is missing.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const venv = join(root, ".venv", "bin", "python");
const python = process.env.AUTORESEARCH_PYTHON || (existsSync(venv) ? venv : "python3");
const out = join(root, "dist", "python");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(
  python,
  ["-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, root],
  { stdio: "inherit", env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" } },
);
rmSync(join(root, "build"), { recursive: true, force: true });
