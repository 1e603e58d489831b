// Which Python runs the daemon: the `autoresearch.python` setting, else the Python extension's
// active interpreter, else a .venv in the workspace folder, else `python3`. When that one cannot
// import `autoresearch`, the daemon runs from a private virtual environment in the extension's
// global storage, created with it (daemonInstall.ts) after the user said yes.
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import * as vscode from "vscode";
import {
  installPrivate,
  probePython,
  readStamp,
  readyVenv,
  runner,
  supportedVersion,
  venvDir,
  type DaemonSource,
  type InstallFailure,
  type Probe,
} from "./daemonInstall";
import { daemonSource, folderVenvPython } from "./pythonCheck";

export interface PythonChoice {
  path: string;
  source: "setting" | "python extension" | "workspace .venv" | "default";
}

/** The part of the Python extension's API used here (ms-python.python, `environments`). */
interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string };
    resolveEnvironment(
      environment: { id: string; path: string } | string,
    ): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

const PYTHON_EXTENSION = "ms-python.python";

async function pythonExtensionApi(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<unknown>(PYTHON_EXTENSION);
  if (!extension) return undefined;
  try {
    const exports = extension.isActive ? extension.exports : await extension.activate();
    return exports as PythonExtensionApi;
  } catch {
    return undefined;
  }
}

/** Calls `listener` when the Python extension's selected interpreter changes. */
export async function onInterpreterChange(listener: () => void): Promise<vscode.Disposable> {
  const api = await pythonExtensionApi();
  return api?.environments?.onDidChangeActiveEnvironmentPath(() => listener()) ?? new vscode.Disposable(() => {});
}

function expand(setting: string, folder: vscode.WorkspaceFolder | undefined): string {
  let path = setting.trim();
  if (folder) path = path.replace(/\$\{workspaceFolder\}/g, folder.uri.fsPath);
  if (path.startsWith("~/")) path = join(homedir(), path.slice(2));
  if (folder && !isAbsolute(path) && (path.includes("/") || path.includes("\\"))) {
    path = join(folder.uri.fsPath, path);
  }
  return path;
}

export async function findPython(folder: vscode.WorkspaceFolder | undefined): Promise<PythonChoice> {
  const setting = vscode.workspace.getConfiguration("autoresearch", folder?.uri).get<string>("python", "");
  if (setting.trim()) return { path: expand(setting, folder), source: "setting" };
  const api = await pythonExtensionApi();
  if (api?.environments) {
    try {
      const active = api.environments.getActiveEnvironmentPath(folder?.uri);
      const resolved = await api.environments.resolveEnvironment(active);
      const path = resolved?.executable.uri?.fsPath ?? active.path;
      if (path) return { path, source: "python extension" };
    } catch {
      // fall through to the defaults
    }
  }
  const venv = folder ? folderVenvPython(folder.uri.fsPath) : undefined;
  if (venv) return { path: venv, source: "workspace .venv" };
  return { path: process.platform === "win32" ? "python" : "python3", source: "default" };
}

/** What the daemon's start is waiting for: the user's answer to the install offer, or pip. */
export type Stage = "asking" | "installing" | undefined;

export interface PythonDeps {
  log: vscode.LogOutputChannel;
  extensionPath: string;
  /** The extension's global storage folder: the private environments live there. */
  storagePath: string;
  onStage: (stage: Stage) => void;
}

// The last failed install per base interpreter: offered again, the offer says how it failed.
const failures = new Map<string, InstallFailure>();

/**
 * An interpreter that can import `autoresearch`: the one found, else the private environment
 * (reused; updated without asking when the bundled daemon changed; created after asking).
 * Undefined when there is none; when `interactive`, the user was told why.
 */
export async function usablePython(
  folder: vscode.WorkspaceFolder | undefined,
  deps: PythonDeps,
  interactive: boolean,
): Promise<string | undefined> {
  const { log } = deps;
  const choice = await findPython(folder);
  const probed = await probePython(choice.path, { cwd: folder?.uri.fsPath });
  const pick = vscode.extensions.getExtension(PYTHON_EXTENSION) ? "Select Interpreter" : undefined;
  const settings = "Open Settings";
  if (!probed.ok) {
    log.warn(`Python ${choice.path} (${choice.source}) could not be run: ${probed.detail}`);
    if (!interactive) return undefined;
    const answer = await vscode.window.showErrorMessage(
      `Autoresearch: the Python interpreter "${choice.path}" (${choice.source}) could not be run. ` +
        "Set autoresearch.python to a Python 3.10+ interpreter.",
      ...[settings, pick].filter((x): x is string => !!x),
    );
    await followUp(answer, settings, pick);
    return undefined;
  }
  const base = probed.probe;
  if (base.autoresearch) {
    log.info(`Python: ${choice.path} (${choice.source}), autoresearch ${base.autoresearch}`);
    return choice.path;
  }
  log.info(`Python ${base.executable} ${base.version} (${choice.source}) has no autoresearch package`);
  if (!supportedVersion(base.version)) {
    if (interactive) {
      const answer = await vscode.window.showErrorMessage(
        `Autoresearch: the daemon needs Python 3.10 or newer; ${base.executable} is Python ${base.version}. ` +
          "Set autoresearch.python to a Python 3.10+ interpreter.",
        ...[settings, pick].filter((x): x is string => !!x),
      );
      await followUp(answer, settings, pick);
    }
    return undefined;
  }
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const source = daemonSource(folders, deps.extensionPath);
  if (!source) {
    if (interactive) {
      const answer = await vscode.window.showErrorMessage(
        `Autoresearch: ${base.executable} cannot import the daemon package "autoresearch", and this build of ` +
          "the extension carries no daemon to install. Set autoresearch.python to an interpreter with the " +
          "autoresearch package (pip install <checkout of this project>).",
        ...[settings, pick].filter((x): x is string => !!x),
      );
      await followUp(answer, settings, pick);
    }
    return undefined;
  }
  const dir = venvDir(deps.storagePath, base.version);
  const ready = await readyVenv(dir, source);
  if (ready) {
    log.info(`Python: ${ready} (private environment made with ${base.executable})`);
    return ready;
  }
  // Installed before with another daemon: the user said yes then, so update it now.
  if (readStamp(dir)) {
    const result = await install(base, source, deps, "updating the daemon");
    if (result.ok) return result.python;
    failures.set(base.executable, result); // the question below then says how it failed
    if (!interactive) return undefined;
  } else if (!interactive) {
    return undefined;
  }
  // The question: the plain offer, or how the last try failed (then Retry Install).
  const failed = failures.get(base.executable);
  const installLabel = failed ? "Retry Install" : "Install";
  const answer = await asking(deps, () =>
    failed
      ? vscode.window.showErrorMessage(`Autoresearch: the daemon is not installed: ${failed.message}`, installLabel, settings, "Show Log")
      : vscode.window.showInformationMessage(
          `Autoresearch needs its daemon, the Python package "autoresearch", which ${base.executable} ` +
            `(Python ${base.version}, ${choice.source}) does not have. Install it into a private environment ` +
            `created with ${base.executable}? pip downloads its dependencies from PyPI; ${base.executable} itself is left unchanged.`,
          ...[installLabel, pick, settings].filter((x): x is string => !!x),
        ),
  );
  if (answer !== installLabel) {
    if (answer === "Show Log") log.show();
    await followUp(answer, settings, pick);
    return undefined;
  }
  for (;;) {
    const result = await install(base, source, deps, "installing the daemon");
    if (result.ok) {
      failures.delete(base.executable);
      void vscode.window.showInformationMessage(
        `Autoresearch: the daemon is installed in a private environment (${dir}); starting it.`,
      );
      return result.python;
    }
    failures.set(base.executable, result);
    const retry = "Retry";
    const next = await asking(deps, () =>
      vscode.window.showErrorMessage(`Autoresearch: ${result.message}`, retry, settings, "Show Log"),
    );
    if (next === retry) continue;
    if (next === "Show Log") log.show();
    await followUp(next, settings, pick);
    return undefined;
  }
}

/** A question the daemon's start waits on: the view and the GPU item say so meanwhile. */
async function asking(deps: PythonDeps, question: () => Thenable<string | undefined>): Promise<string | undefined> {
  deps.onStage("asking");
  try {
    return await question();
  } finally {
    deps.onStage(undefined);
  }
}

async function install(base: Probe, source: DaemonSource, deps: PythonDeps, title: string) {
  deps.onStage("installing");
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Autoresearch: ${title}` },
      async (progress) => {
        const run = runner((line) => deps.log.info(`install: ${line}`));
        const result = await installPrivate(base, deps.storagePath, source, run, (step) => {
          deps.log.info(`Install: ${step}`);
          progress.report({ message: step });
        });
        if (result.ok) deps.log.info(`Installed the daemon: ${result.python}`);
        else deps.log.error(`Installing the daemon failed (${result.kind}): ${result.message}`);
        return result;
      },
    );
  } finally {
    deps.onStage(undefined);
  }
}

async function followUp(answer: string | undefined, settings: string, pick: string | undefined) {
  if (answer === settings) {
    await vscode.commands.executeCommand("workbench.action.openSettings", "autoresearch.python");
  } else if (answer && answer === pick) {
    await vscode.commands.executeCommand("python.setInterpreter");
  }
}
