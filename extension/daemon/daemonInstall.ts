// The daemon's private virtual environment, without VS Code: probe an interpreter, create
// `<storage>/venv-<python version>` with it, pip install the bundled daemon there (its
// dependencies from the package index), stamp what was installed, and tell a failure's reason and
// way out in one sentence. Never installs into the interpreter it was given: that one may be the
// system's (PEP 668 "externally managed") or a shared pyenv / conda install.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

export interface Probe {
  /** The interpreter's real path (sys.executable): what a shim or `python3` on PATH resolves to. */
  executable: string;
  /** e.g. "3.11.2" */
  version: string;
  /** The importable daemon package's version, or undefined when it cannot be imported. */
  autoresearch: string | undefined;
}

export type ProbeResult = { ok: true; probe: Probe } | { ok: false; detail: string };

const PROBE = [
  "import json, sys",
  "v = None",
  "try:",
  "    import autoresearch",
  "    v = getattr(autoresearch, '__version__', '') or 'ok'",
  "except ImportError:",
  "    pass",
  "print(json.dumps({'executable': sys.executable, 'version': '%d.%d.%d' % sys.version_info[:3], 'autoresearch': v}))",
].join("\n");

/** Run the interpreter once: where it really is, its version, whether it imports the daemon. */
export function probePython(
  python: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(
      python,
      ["-c", PROBE],
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 30_000, windowsHide: true },
      (error, stdout, stderr) => {
        if (error) return resolve({ ok: false, detail: `${python}: ${(stderr || error.message).trim()}` });
        try {
          const parsed = JSON.parse(stdout.trim().split("\n").pop() ?? "") as Probe & { autoresearch: string | null };
          resolve({ ok: true, probe: { ...parsed, autoresearch: parsed.autoresearch ?? undefined } });
        } catch {
          resolve({ ok: false, detail: `${python}: unexpected output ${JSON.stringify(stdout.slice(0, 200))}` });
        }
      },
    );
  });
}

/** The daemon needs Python 3.10 or newer (pyproject's requires-python). */
export function supportedVersion(version: string): boolean {
  const [major, minor] = version.split(".").map(Number);
  return (major ?? 0) > 3 || ((major ?? 0) === 3 && (minor ?? 0) >= 10);
}

/** What goes into the private environment: the wheel inside the .vsix, or a checkout (editable). */
export interface DaemonSource {
  kind: "wheel" | "checkout";
  path: string;
  /** Recorded in the stamp: a different id means reinstall. */
  id: string;
}

export function wheelSource(wheel: string): DaemonSource {
  // The content's hash, not only the version in its name: a rebuilt 0.1.0 is a new daemon too.
  const hash = createHash("sha256").update(readFileSync(wheel)).digest("hex").slice(0, 16);
  return { kind: "wheel", path: wheel, id: `${basename(wheel)}#${hash}` };
}

export function checkoutSource(folder: string): DaemonSource {
  return { kind: "checkout", path: folder, id: `editable:${folder}` };
}

export function venvDir(storage: string, version: string): string {
  return join(storage, `venv-${version}`);
}

export function venvPython(dir: string, platform = process.platform): string {
  return platform === "win32" ? join(dir, "Scripts", "python.exe") : join(dir, "bin", "python");
}

const STAMP = "autoresearch-install.json";

interface Stamp {
  source: string;
  createdWith: string;
  installed: string;
}

export function readStamp(dir: string): Stamp | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, STAMP), "utf-8")) as Stamp;
  } catch {
    return undefined;
  }
}

/** The private environment's interpreter when it holds exactly this source and imports it. */
export async function readyVenv(dir: string, source: DaemonSource): Promise<string | undefined> {
  if (readStamp(dir)?.source !== source.id) return undefined;
  const python = venvPython(dir);
  const probe = await probePython(python);
  return probe.ok && probe.probe.autoresearch ? python : undefined;
}

export type FailureKind = "no-venv" | "venv" | "pip-index" | "pip" | "no-daemon";

export interface InstallFailure {
  kind: FailureKind;
  /** One sentence for the notification: what failed, why, and what to do. */
  message: string;
}

export type InstallResult = { ok: true; python: string; upgraded: boolean } | ({ ok: false } & InstallFailure);

/** A process's combined output lines go to `log`; resolves with its exit code and all output. */
export type Run = (command: string, args: string[]) => Promise<{ code: number | null; output: string }>;

export function runner(log: (line: string) => void, env?: NodeJS.ProcessEnv): Run {
  return (command, args) =>
    new Promise((resolve) => {
      log(`$ ${command} ${args.join(" ")}`);
      let output = "";
      const child = spawn(command, args, { env: env ?? process.env, windowsHide: true });
      const take = (data: Buffer) => {
        const text = data.toString();
        output += text;
        for (const line of text.split(/\r?\n/)) if (line.trim()) log(line);
      };
      child.stdout.on("data", take);
      child.stderr.on("data", take);
      child.on("error", (error) => {
        output += `\n${error.message}`;
        resolve({ code: null, output });
      });
      child.on("close", (code) => resolve({ code, output }));
    });
}

const NO_VENV = /ensurepip is not\s+available|No module named '?(venv|ensurepip)'?/;

/** Why `python -m venv` failed, in words that say what to do. */
export function venvFailure(python: string, output: string): InstallFailure {
  if (NO_VENV.test(output)) {
    return {
      kind: "no-venv",
      message:
        `Python at ${python} cannot create virtual environments: install python3-venv ` +
        "(sudo apt install python3-venv), or set autoresearch.python to an interpreter with the autoresearch package.",
    };
  }
  return {
    kind: "venv",
    message:
      `Python at ${python} could not create the daemon's environment: ${lastError(output)}. ` +
      "Set autoresearch.python to another Python 3.10+ interpreter, or one with the autoresearch package.",
  };
}

const INDEX =
  /Could not find a version that satisfies|No matching distribution found|Failed to establish a new connection|Temporary failure in name resolution|Network is unreachable|Read timed out|SSLError|ProxyError/;

/** Why pip failed: an unreachable index (the dependencies come from it) or something else. */
export function pipFailure(dir: string, output: string): InstallFailure {
  const reason = lastError(output);
  if (INDEX.test(output)) {
    return {
      kind: "pip-index",
      message:
        `pip could not download the daemon's dependencies into ${dir}: ${reason}. ` +
        "This machine must reach PyPI (or the index set in pip.conf); fix that, then Retry.",
    };
  }
  return {
    kind: "pip",
    message: `pip could not install the daemon into ${dir}: ${reason}. See the log for pip's output, then Retry.`,
  };
}

/** The most telling line of a failed command's output: pip's ERROR line, else the last line. */
export function lastError(output: string): string {
  const lines = output
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line);
  const error = [...lines].reverse().find((line) => /^(ERROR|error):/.test(line) && !/^ERROR: Command errored/.test(line));
  return (error ?? lines[lines.length - 1] ?? "no output").replace(/^(ERROR|error):\s*/, "").replace(/\.$/, "");
}

/**
 * Make `<storage>/venv-<version>` hold `source`: reuse it when its stamp says so, otherwise
 * (re)create it with `base` and pip install the source there (dependencies from the index).
 */
export async function installPrivate(
  base: Probe,
  storage: string,
  source: DaemonSource,
  run: Run,
  step: (what: string) => void = () => {},
): Promise<InstallResult> {
  const dir = venvDir(storage, base.version);
  const python = venvPython(dir);
  const stamp = readStamp(dir);
  if (stamp?.source === source.id && (await readyVenv(dir, source))) return { ok: true, python, upgraded: false };
  const probe = existsSync(python) ? await probePython(python) : undefined;
  if (!probe?.ok) {
    step(`creating a private environment with ${base.executable}`);
    rmSync(dir, { recursive: true, force: true });
    const created = await run(base.executable, ["-m", "venv", dir]);
    if (created.code !== 0) {
      rmSync(dir, { recursive: true, force: true }); // a half-made environment is no use later
      return { ok: false, ...venvFailure(base.executable, created.output) };
    }
  }
  const pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"] as const;
  if (source.kind === "checkout") {
    step(`pip install -e ${source.path}`);
    const done = await run(pip[0], [...pip.slice(1), "-e", source.path]);
    if (done.code !== 0) return { ok: false, ...pipFailure(dir, done.output) };
  } else {
    step(`pip install ${basename(source.path)} and its dependencies`);
    // The same version rebuilt is not an upgrade to pip: put the package in anew, then its
    // dependencies (a no-op when they are there already).
    const pkg = await run(pip[0], [...pip.slice(1), "--force-reinstall", "--no-deps", source.path]);
    if (pkg.code !== 0) return { ok: false, ...pipFailure(dir, pkg.output) };
    const deps = await run(pip[0], [...pip.slice(1), source.path]);
    if (deps.code !== 0) return { ok: false, ...pipFailure(dir, deps.output) };
  }
  const after = await probePython(python);
  if (!after.ok || !after.probe.autoresearch) {
    return {
      ok: false,
      kind: "pip",
      message: `The daemon was installed into ${dir} but does not import: ${after.ok ? "no autoresearch package" : after.detail}. See the log.`,
    };
  }
  const written: Stamp = { source: source.id, createdWith: base.executable, installed: new Date().toISOString() };
  writeFileSync(join(dir, STAMP), JSON.stringify(written, null, 1));
  return { ok: true, python, upgraded: stamp !== undefined };
}
